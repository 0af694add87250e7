@resilience
Feature: The live map survives trouble in the services around it
  The CMS, the database and Redis can fail or restart during a rally; a fan can lose their network; the
  Processor is redeployed. Fans are told when something is unavailable instead of waiting, nothing that was
  reported is lost, and everything works again as soon as the service is back.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these entries:
      | car | crew             | trackers  |
      | #7  | Hoxha / Dervishi | tracker-A |
    And Alice may watch the "Rally of Tirana"
    And Carol may watch the "Rally of Tirana"

  @cms-down
  Scenario Outline: While the CMS is down, fans are told at once; when it is back, they get in
    Given the CMS is down and <how it fails>
    When Alice tries to open the live channel
    Then Alice is turned away within 3 seconds because signing in is unavailable
    And the service has counted the refusal as a CMS outage
    When the CMS is back
    Then Alice can open the live map of the "Rally of Tirana" again

    Examples:
      | how it fails                        |
      | answers every request with an error |
      | does not answer at all              |
      | is not running at all               |

  @postgres-outage @needs-service-control
  Scenario: Positions reported while the database is down are stored once it is back
    Given Alice has the live channel open
    When the database goes down
    And tracker-A reports 5 positions meanwhile
    And Alice opens the live map of the "Rally of Tirana"
    Then the Processor reports the database as down
    And Alice is told the live map is unavailable for now
    When the database is back
    Then the Processor is healthy again
    And each of the 5 positions is stored exactly once
    And Alice can still open the live map of the "Rally of Tirana"

  @redis-restart @needs-service-control
  Scenario: After Redis restarts empty, new positions reach the fans again
    Given Alice has the live map of the "Rally of Tirana" open
    When Redis goes down
    Then the Processor reports Redis as down
    When Redis is back, empty
    Then the Processor is healthy again
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210 within 10 seconds

  @redis-paused @needs-service-control
  Scenario: Redis freezing for a while does not hang the Processor
    Given Alice has the live map of the "Rally of Tirana" open
    When Redis freezes
    Then the Processor reports Redis as down
    And the Processor reports that no positions are coming in, instead of waiting forever
    When Redis thaws
    Then the Processor is healthy again
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210 within 10 seconds

  @slow-consumer
  Scenario: A fan who stops reading is disconnected without slowing anyone else
    Given a Processor P that reads 50 reports at a time and lets 100 messages queue up for each fan
    And Alice follows the "Rally of Tirana" through Processor P over a poor network
    And Carol follows the "Rally of Tirana" through Processor P
    When Alice stops reading her messages
    And tracker-A reports bursts of 2000 positions until Processor P gives up on Alice
    Then Carol has received every one of those positions
    And Processor P has disconnected 1 fan as too slow

  @graceful-shutdown
  Scenario: A Processor being redeployed says goodbye to its fans and exits cleanly
    Given a Processor P of this scenario's own
    And Alice follows the "Rally of Tirana" through Processor P
    When Processor P is asked to shut down
    Then Alice is disconnected with a notice that the live map is going away for a moment
    And Processor P exits cleanly within 5 seconds

  @keepalive
  Scenario: A fan whose connection silently died is dropped
    Given a Processor P that checks often whether each fan is still there
    And Alice follows the "Rally of Tirana" through Processor P
    When Alice stops reading her messages
    Then Processor P drops Alice's connection within 10 seconds

  @unreadable-stream
  Scenario: A Processor that cannot read its telemetry stream says so, though Redis and the database answer
    Given a Processor P of this scenario's own
    When Processor P's telemetry stream is overwritten with something that is not a stream
    Then Processor P reports that it cannot consume its telemetry stream, though Redis and the database are up
    When Processor P's telemetry stream is repaired
    Then Processor P is healthy again

  @overwhelmed
  Scenario: A Processor that falls too far behind tells its fans to come back, and they see where the cars are now
    Given a Processor P that lets its fans fall only a moment behind
    And a Processor Q that stores every report of the same telemetry
    And Alice follows the "Rally of Tirana" through Processor P
    When Processor P is overwhelmed while tracker-A reports 3 positions
    Then Alice is told that her live map fell behind and to come back
    And Processor P has counted 1 fan it could not keep up to date
    When Alice comes back to the "Rally of Tirana" through Processor P
    Then Alice sees where tracker-A is now

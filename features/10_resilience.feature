@resilience
Feature: The live map survives trouble in the services around it
  The CMS, the database and the telemetry feed can fail or restart during a rally; a fan can lose their network;
  the service is redeployed. Fans are told when something is unavailable instead of waiting, nothing that was
  reported is lost, and everything works again as soon as the part that failed is back.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these cars:
      | car | crew             | trackers  |
      | #7  | Hoxha / Dervishi | tracker-A |
    And Alice may watch the "Rally of Tirana"
    And Carol may watch the "Rally of Tirana"

  @cms-down
  Scenario Outline: While the CMS is down, fans are told at once; when it is back, they get in
    Given the CMS is down and <how it fails>
    When Alice tries to connect to the live map
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
    Given Alice is connected to the live map
    When the database goes down
    And tracker-A reports 5 positions meanwhile
    And Alice tries to open the live map of the "Rally of Tirana"
    Then the service reports the database as down
    And Alice is told the live map is unavailable for now
    When the database is back
    Then the service is healthy again
    And each of the 5 positions is stored exactly once
    And Alice can still open the live map of the "Rally of Tirana"

  @redis-restart @needs-service-control
  Scenario: After the telemetry feed comes back empty, new positions reach the fans again
    Given Alice has the live map of the "Rally of Tirana" open
    When the telemetry feed goes down
    Then the service reports the telemetry feed as down
    When the telemetry feed is back, empty
    Then the service is healthy again
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210 within 10 seconds

  @redis-paused @needs-service-control
  Scenario: A telemetry feed that stops answering for a while does not hang the service
    Given Alice has the live map of the "Rally of Tirana" open
    When the telemetry feed stops answering for a while
    Then the service reports the telemetry feed as down
    And the service reports that no positions are coming in, instead of waiting forever
    When the telemetry feed answers again
    Then the service is healthy again
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210 within 10 seconds

  @silent-link
  Scenario: A service whose link to the trackers' reports goes silent says so in time, answering health checks at once
    Given a service with the default settings, and a second one set to give up on an unanswered read after 2 seconds (a test setting)
    When the line of both services to the trackers' reports goes silent
    Then within 3 seconds both services report that the trackers' reports cannot be reached, answering every health check within a second
    And the second service reports within 3.5 seconds that no positions are coming in, and the first one between 3.5 and 7 seconds
    When the line speaks again
    Then within 1.5 seconds both services report that the trackers' reports can be reached again
    And both services are healthy again

  @slow-consumer
  Scenario Outline: A fan who stops reading is disconnected without slowing anyone else
    Given a service that <setting>
    And Alice follows the "Rally of Tirana" through that service over a poor network
    And Carol follows the "Rally of Tirana" through that service
    When Alice stops reading her messages
    And tracker-A reports positions 50 at a time until that service gives up on Alice, who reads again <when>
    Then Carol has received every one of those positions
    And that service has disconnected 1 fan as too slow
    And <what Alice learns>

    Examples:
      | setting                             | when            | what Alice learns                                                                              |
      | lets 100 messages wait for each fan | at once         | Alice learns she was disconnected for being too slow, after about 100 messages waited for her  |
      | keeps the usual limits              | at once         | Alice learns she was disconnected for being too slow, after about 1024 messages waited for her |
      | lets 100 messages wait for each fan | after 1 second  | Alice learns she was disconnected for being too slow                                           |
      | lets 100 messages wait for each fan | after 3 seconds | Alice's connection is simply gone, with no word why                                            |

  @long-queue
  Scenario: A service that lets many messages wait for each fan waits longer for a fan who stopped reading
    Given a service that lets 100000 messages wait for each fan
    And Alice follows the "Rally of Tirana" through that service over a poor network
    And Carol follows the "Rally of Tirana" through that service
    When Alice stops reading her messages
    And tracker-A reports 3000 positions, 50 at a time
    Then Carol has received every one of those positions
    And that service has disconnected no fan as too slow

  @graceful-shutdown
  Scenario Outline: A service being redeployed says goodbye to its fans and exits cleanly
    Given a service of this scenario's own, about to be redeployed
    And Alice follows the "Rally of Tirana" through the service being redeployed
    When the service being redeployed is <stopped>
    Then Alice is disconnected with a notice that the live map is going away for a moment
    And the service being redeployed exits cleanly within 5 seconds

    Examples:
      | stopped                       |
      | asked to shut down            |
      | interrupted from the keyboard |

  @shutdown-in-flight
  Scenario Outline: A service being redeployed while it stores positions finishes storing them first, and takes nothing new
    Given a service of this scenario's own, to be redeployed, set up but not started yet
    And the database stalls and stores nothing for now
    And the trackers of the "Rally of Tirana" have reported 30 positions in a burst
    When the service being redeployed starts
    And the service being redeployed has taken them and is storing them
    And the service being redeployed is asked to shut down
    Then Carol can no longer connect to the service being redeployed
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 13:00:00
    And the database <stall>
    Then the service being redeployed exits cleanly within 5 seconds
    And every report the service being redeployed had taken is stored exactly once
    And no report is left unfinished
    And the service being redeployed never took tracker-A's report of 2026-05-02 13:00:00

    Examples:
      | stall                                                  |
      | is no longer stalled                                   |
      | stalls 3 seconds more after the signal, then stores again |

  @shutdown-timeout
  Scenario Outline: A service that cannot finish storing in time exits anyway, and the next one stores what it had taken
    Given <service>
    And the database stalls and stores nothing for now
    And the trackers of the "Rally of Tirana" have reported 30 positions in a burst
    When the service being redeployed starts
    And the service being redeployed has taken them and is storing them
    And the service being redeployed is asked to shut down
    Then the service being redeployed exits cleanly within <seconds> seconds
    And the positions the service being redeployed had taken are still waiting to be stored
    When the database is no longer stalled
    And the service being redeployed is started again
    Then each of the 30 positions is stored exactly once
    And no report is left unfinished

    Examples:
      | service                                                                                                                               | seconds |
      | a service of this scenario's own, to be redeployed, set up but not started yet                                                          | 5       |
      | a service of this scenario's own, to be redeployed, that waits at most 1 second for its work when asked to shut down, set up but not started yet | 2       |

  @keepalive
  Scenario: A fan whose connection silently died is dropped
    Given a service that checks every half second whether each fan is still there (a test setting; the product checks every 20 seconds)
    And Alice follows the "Rally of Tirana" through that service
    When Alice stops reading her messages
    Then that service drops Alice's connection within 10 seconds

  @usual-keepalive @slow
  Scenario: Unless told otherwise, the service checks on each fan every 20 seconds and waits 20 seconds for an answer
    Given a service that keeps the usual limits
    And Alice follows the "Rally of Tirana" through that service
    And Carol follows the "Rally of Tirana" through that service
    When Carol stops reading her messages
    Then that service checks on Alice about 20 seconds after she opened her map
    And that service drops Carol about 40 seconds after she opened her map, as she did not answer

  @unreadable-stream
  Scenario: A service that cannot read the trackers' reports says so, though the telemetry feed and the database answer
    Given a service of its own, for this scenario
    When the trackers' reports for that service are overwritten with something that is no list of reports
    Then that service reports that it cannot take the trackers' reports, though the telemetry feed and the database are up
    When the trackers' reports for that service are repaired
    Then that service is healthy again

  @overwhelmed
  Scenario: A service that falls too far behind tells its fans to come back, and they see where the cars are now
    Given the service in the south hall lets its fans fall only a moment behind (a test setting; the product allows 5 seconds)
    And the service in the north hall stores every report of the same trackers as well
    And Alice follows the "Rally of Tirana" through the service in the south hall
    When the service in the south hall is overwhelmed while tracker-A reports 3 positions
    Then Alice is told that her live map fell behind and to come back
    And the service in the south hall has counted 1 fan it could not keep up to date
    And the operator sees how late the news reached it, and that Alice was not counted as too slow
    When Alice comes back to the "Rally of Tirana" through the service in the south hall
    Then Alice sees where tracker-A is now

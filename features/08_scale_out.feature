@scale-out
Feature: Several services share the work
  For a big rally the service runs in several halls side by side: the service in the north hall, the service in
  the south hall. Together they store every position exactly once, every fan sees every position whichever
  service stored it, and when a service dies in the middle of its work another one finishes that work.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these cars:
      | car | crew             | trackers             |
      | #7  | Hoxha / Dervishi | tracker-A, tracker-B |
      | #12 | Leka / Marku     | tracker-C, tracker-D |
    And Alice may watch the "Rally of Tirana"

  @concurrent-duplicates
  Scenario: Two services storing the same position at the same moment keep a single copy
    Given the services in the north and south halls each store every report of the trackers
    And the database stalls and stores nothing for now
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    And the services in the north and south halls are both about to store it
    And the database is no longer stalled
    Then the position of tracker-A at 2026-05-02 11:02:00 is stored exactly once
    And every report has been dealt with

  @exactly-once
  Scenario: Two services sharing the trackers' reports store every position once, and the fans of both see all of them
    Given Carol may watch the "Rally of Tirana"
    And tracker-Z is on no car
    And the services in the north and south halls share the trackers' reports
    And Alice follows the "Rally of Tirana" through the service in the north hall
    And Carol follows the "Rally of Tirana" through the service in the south hall
    When tracker-Z reports 60 positions in a burst
    And the trackers of the "Rally of Tirana" report 500 positions in a burst
    Then each of the 500 positions is stored exactly once
    And every report has been dealt with
    And Alice and Carol each receive all 500 positions, each of them once
    And the two services together counted each of the 60 positions of tracker-Z once as an orphan

  @crash-recovery
  Scenario: When a service dies in the middle of its work, another one finishes it
    Given the services in the north and south halls are set up to share the trackers' reports and to take over each other's unfinished work quickly (a test setting: after 0.3 seconds; the product waits 30 seconds)
    And the database stalls and stores nothing for now
    And the trackers of the "Rally of Tirana" have reported 300 positions in a burst
    When the service in the north hall starts
    And the service in the north hall has taken reports it has not stored yet
    And the service in the north hall dies suddenly
    And the database is no longer stalled
    And the service in the south hall starts
    Then each of the 300 positions is stored exactly once
    And every report has been dealt with

  @restart-recovery
  Scenario: A service that dies in the middle of its work finishes it as soon as it is back
    Given the service in the north hall is set up to take the trackers' reports on its own, handing unfinished work over only after 10 minutes (a test setting; the product waits 30 seconds)
    And the database stalls and stores nothing for now
    And the trackers of the "Rally of Tirana" have reported 120 positions in a burst
    When the service in the north hall starts
    And the service in the north hall has taken reports it has not stored yet
    And the service in the north hall dies suddenly
    And the database is no longer stalled
    And the service in the north hall starts again under the same name
    Then each of the 120 positions is stored exactly once
    And every report has been dealt with

  @answer-in-flight
  Scenario: Positions stored while a fan's map is on its way to the fan are shown live, none lost
    Given Carol may watch the "Rally of Tirana"
    And the service in the north hall stores the trackers' reports, and the service in the south hall serves fans of the same reports over a slow line to the database
    And Carol follows the "Rally of Tirana" through the service in the south hall
    And Alice is connected to the service in the south hall
    When Alice opens the live map of the "Rally of Tirana", whose fresh map is read but held up on its way to the service in the south hall while these positions are stored and sent out to Carol:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:02:00 | 41.3290  | 19.8210   |
      | tracker-C | 2026-05-02 11:02:30 | 41.3310  | 19.8260   |
    Then Alice has seen each position stored while her map was loading exactly once
    And Alice never receives the same position twice
    And every connection over the slow line that stored positions said it keeps the latest positions itself

  @live-channel
  Scenario: Services tell each other what they stored, in numbered messages, each in time order
    Given the organisation "Kosovo Motorsport" runs the event "Rally of Prishtina"
    And the "Rally of Prishtina" has these cars:
      | car | crew            | trackers  |
      | #3  | Berisha / Gashi | tracker-A |
    And the service in the north hall stores the trackers' reports, and the service in the south hall only serves fans
    And Alice follows the "Rally of Tirana" through the service in the south hall
    And someone listens to what the services tell each other
    When tracker-A and tracker-C send 40 positions they could not send before, all at once and out of order
    And tracker-C reports the position 41.3310, 19.8260 at 2026-05-02 13:00:00
    Then Alice sees tracker-C move to 41.3310, 19.8260
    And the service in the north hall told the others of each position once per event, in messages numbered from 1 without a gap, each in time order
    When someone tells the services two things they cannot read
    And tracker-C reports the position 41.3320, 19.8270 at 2026-05-02 13:00:10
    Then Alice sees tracker-C move to 41.3320, 19.8270
    And the service in the south hall noted each thing it could not read once in its log
    When the service in the north hall restarts
    And tracker-C reports the position 41.3330, 19.8280 at 2026-05-02 13:00:20
    Then Alice sees tracker-C move to 41.3330, 19.8280
    And the restarted service in the north hall numbers its messages from 1 again, under a new name

  @gap-counted
  Scenario Outline: A service that misses what the others told it counts the loss, and its fans get a fresh map
    Given the service in the north hall stores the trackers' reports, and the service in the south hall only serves fans
    And Alice follows the "Rally of Tirana" through the service in the south hall
    When <what happens>
    Then the operator sees that the service in the south hall lost what the others told it 1 time
    And Alice gets a fresh map of the "Rally of Tirana"
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210

    Examples:
      | what happens                                                                        |
      | the service in the south hall loses its connection to what the others tell it      |
      | one of the messages of another service never reaches the service in the south hall |

  @redelivered
  Scenario: Positions a service must store again, because its connection failed just after it stored them, reach nobody twice
    Given the service in the north hall stores the trackers' reports over a connection that can be cut
    And Alice follows the "Rally of Tirana" through the service in the north hall
    When the connection of the service in the north hall fails whenever it tells the others what it stored
    And the trackers of the "Rally of Tirana" report 40 positions in a burst
    Then the connection of the service in the north hall failed as it told the others about them
    And each of the 40 positions is stored exactly once
    And every report has been dealt with
    And Alice receives all 40 of them, each on the map of its own event
    And Alice never receives the same position twice

  @joined-later
  Scenario: When news reaches a service too late, fans who opened the map after it was sent stay, the others are told to come back
    Given Dan may watch the "Rally of Tirana"
    And the service in the north hall stores the trackers' reports, and the service in the south hall only serves fans, letting them fall only a moment behind
    And Alice follows the "Rally of Tirana" through the service in the south hall
    When the news from the service in the north hall is held up on its way to the south hall
    And tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    And the service in the north hall has told the others about it
    And Dan opens the live map of the "Rally of Tirana" through the service in the south hall
    And the news reaches the south hall 0.6 seconds late
    Then Alice is told that her live map fell behind and to come back
    And Dan sees tracker-A at 41.3290, 19.8210 on the map he opened
    When tracker-A reports the position 41.3300, 19.8220 at 2026-05-02 11:02:10
    Then Dan sees tracker-A move to 41.3300, 19.8220

  @lag-default
  Scenario Outline: With the default setting a service shows news up to 5 seconds late, and tells its fans to come back after that
    Given the service in the north hall stores the trackers' reports, and the service in the south hall only serves fans
    And Alice follows the "Rally of Tirana" through the service in the south hall
    When the news from the service in the north hall is held up on its way to the south hall
    And tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    And the news reaches the south hall <late> seconds late
    Then Alice <sees>

    Examples:
      | late | sees                                       |
      | 2    | sees tracker-A move to 41.3290, 19.8210    |

    @slow
    Examples: past the default
      | late | sees                                                   |
      | 7    | is told that her live map fell behind and to come back |

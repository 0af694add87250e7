@live
Feature: Live broadcast of the cars' positions
  Fans follow a rally on a live map. Each car carries GPS trackers; every position they report is stored and
  shown at once to everyone watching that event, and to nobody else.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these cars:
      | car | crew             | trackers             |
      | #7  | Hoxha / Dervishi | tracker-A, tracker-D |
      | #12 | Leka / Marku     | tracker-B, tracker-C |
    And these positions were recorded:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:00:00 | 41.3270  | 19.8190   |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |
    And Alice may watch the "Rally of Tirana"

  @happy-path
  Scenario: A signed-in fan sees every car, then follows them live
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice sees these cars on the map:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |
    And Alice's map names no report for any of them, as they were recorded before
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210 within 1 second
    When Alice opens the live map of the "Rally of Tirana" again
    Then Alice sees these cars on the map:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:02:00 | 41.3290  | 19.8210   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |

  @auth
  Scenario: A fan who is not signed in cannot connect to the live map
    When a fan who is not signed in connects to the live map
    Then the fan is turned away as not signed in
    And the CMS was not asked about the fan

  @forbidden
  Scenario: A fan of another organisation may not watch the event
    Given Bob is signed in for the organisation "Kosovo Motorsport" only
    When Bob tries to open the live map of the "Rally of Tirana"
    Then Bob is told that watching the "Rally of Tirana" is forbidden

  @fanout
  Scenario: Every fan watching the event sees the same new position
    Given Carol may watch the "Rally of Tirana"
    And Alice and Carol have the live map of the "Rally of Tirana" open
    When tracker-B reports the position 41.3310, 19.8260 at 2026-05-02 11:03:00
    Then Alice and Carol both see tracker-B move to 41.3310, 19.8260
    And the operator sees 2 positions sent out to fans

  @orphan
  Scenario: A position from a tracker on no car is kept but shown to nobody
    Given tracker-Z is on no car
    And Alice has the live map of the "Rally of Tirana" open
    When tracker-Z reports the position 41.3400, 19.8300 at 2026-05-02 11:04:00
    And tracker-A reports the position 41.3295, 19.8215 at 2026-05-02 11:04:01
    Then Alice sees tracker-A move to 41.3295, 19.8215
    And Alice never sees tracker-Z
    And exactly 1 orphan position has been counted
    And the position of tracker-Z at 2026-05-02 11:04:00 is stored

  @faulty
  Scenario: Positions flagged as faulty are left off the map
    Given the position of tracker-A at 2026-05-02 11:01:00 is flagged as faulty
    And every position of tracker-B is flagged as faulty
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice sees these cars on the map:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:00:00 | 41.3270  | 19.8190   |
    And Alice does not see tracker-B on the map

  @late-position
  Scenario: A position that arrives late does not take a car back on a map opened afterwards
    When tracker-A reports the position 41.3275, 19.8195 at 2026-05-02 11:00:45
    Then the position of tracker-A at 2026-05-02 11:00:45 is stored
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice sees these cars on the map:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |

  @capital-id
  Scenario: A fan whose browser writes the event's id in capitals still follows that event
    When Alice opens the live map of the "Rally of Tirana", its id written in capitals
    Then Alice follows the "Rally of Tirana", named in lower case as the CMS names it
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210

  @leave-unfollowed
  Scenario: Leaving an event one does not follow is simply confirmed, and changes nothing else
    Given the organisation "Kosovo Motorsport" runs the event "Rally of Prishtina"
    And Alice has the live map of the "Rally of Tirana" open
    When Alice stops following the "Rally of Prishtina"
    Then Alice is told she no longer follows the "Rally of Prishtina"
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210

  @car-telemetry
  Scenario Outline: Fans see each car's speed, heading, altitude and satellites as its tracker reports them
    Given Carol may watch the "Rally of Tirana"
    And Alice has the live map of the "Rally of Tirana" open
    When tracker-A reports this position at 2026-05-02 11:02:00:
      | latitude | longitude | speed (km/h) | heading (°) | altitude (m) | satellites   |
      | 41.3290  | 19.8210   | <speed>      | <heading>   | <altitude>   | <satellites> |
    Then Alice sees tracker-A move there with the speed, heading, altitude and satellites it reported
    When Carol opens the live map of the "Rally of Tirana"
    Then Carol sees tracker-A on the map with the speed, heading, altitude and satellites it reported
    And Carol's map shows that position as Alice was sent it, naming its car, its event and the report it came from

    Examples: a tracker that reports everything
      | speed | heading | altitude | satellites |
      | 87.5  | 270     | 312.5    | 12         |

    Examples: a tracker that reports only where it is
      | speed    | heading  | altitude | satellites |
      | not sent | not sent | not sent | not sent   |

  @shared-tracker
  Scenario: A tracker fitted to two cars of the event is shown once, on the car the rules name
    Given tracker-S and tracker-T are each fitted to both car #7 and car #12
    And these positions were recorded:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-S | 2026-05-02 11:00:10 | 41.3250  | 19.8150   |
      | tracker-T | 2026-05-02 11:00:20 | 41.3260  | 19.8160   |
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice sees tracker-S and tracker-T on the map once each, on the one of their cars entered first
    When tracker-S reports the position 41.3350, 19.8350 at 2026-05-02 11:02:00
    And tracker-T reports the position 41.3360, 19.8360 at 2026-05-02 11:02:10
    Then Alice sees tracker-S and tracker-T move once each, on the one of their cars entered first

  @own-boundary
  Scenario: A late position moves its car if it is newer than that car's own last one, however new the other cars are
    Given Alice has the live map of the "Rally of Tirana" open
    When tracker-A reports the position 41.3275, 19.8195 at 2026-05-02 11:00:45
    And tracker-B reports the position 41.3305, 19.8255 at 2026-05-02 11:00:45
    Then Alice sees tracker-B move to 41.3305, 19.8255
    And Alice is not shown tracker-A's position of 2026-05-02 11:00:45

  @grouped-delivery
  Scenario: A fan following two events gets the positions of a catch-up event by event, each event's in time order
    Given the organisation "Kosovo Motorsport" runs the event "Rally of Prishtina"
    And the "Rally of Prishtina" has these cars:
      | car | crew            | trackers  |
      | #3  | Berisha / Gashi | tracker-P |
    And Alice may watch the "Rally of Prishtina"
    And Alice has the live map of the "Rally of Tirana" open
    And Alice has the live map of the "Rally of Prishtina" open
    And the database stalls and stores nothing for now
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    And the service is storing it
    Then Alice gets no new position of tracker-A
    When tracker-A and tracker-P send 12 positions they could not send before, all at once and out of order
    And the database is no longer stalled
    Then Alice gets those positions event by event, each event's one after the other in time order

  @shared-snapshot
  Scenario: Fans who open the map while it is loading for another share one look at the database, and all see the cars
    Given Dan may watch the "Rally of Tirana"
    And Erin may watch the "Rally of Tirana"
    And the database keeps every map waiting for now
    When Alice opens the live map of the "Rally of Tirana", which waits for the database
    And Dan and Erin open the live map of the "Rally of Tirana" while Alice's is waiting
    Then the service reads only one map of the "Rally of Tirana" at a time
    When the database no longer keeps the maps waiting
    Then Alice, Dan and Erin see these cars on the map:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |
    And the operator sees that the service read the map from the database twice for the three fans

  @map-not-opened
  Scenario: A fan whose map could not be read is not left following the event, and the operator sees the maps open
    Given Carol may watch the "Rally of Tirana"
    And the service in the north hall reaches the database over a line that can be cut
    And Carol follows the "Rally of Tirana" through the service in the north hall
    When the line between the service in the north hall and the database is cut
    And Alice opens the live map of the "Rally of Tirana" through the service in the north hall
    Then Alice is told the live map is unavailable for now
    And the operator sees 1 live map open on the service in the north hall
    When the line between the service in the north hall and the database is mended
    And tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Carol's map soon shows tracker-A at 41.3290, 19.8210
    And Alice is shown nothing more of the "Rally of Tirana"
    When Alice opens the live map of the "Rally of Tirana" through the service in the north hall
    Then the operator sees 2 live maps open on the service in the north hall
    When Alice stops following the "Rally of Tirana"
    Then the operator sees 1 live map open on the service in the north hall

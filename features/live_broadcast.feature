@live
Feature: Live broadcast of the cars' positions
  Fans follow a rally on a live map. Each car carries GPS trackers; every position they report is stored and
  shown at once to everyone watching that event, and to nobody else.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these entries:
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
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210 within 1 second

  @auth
  Scenario: A visitor who is not signed in cannot open the live channel
    When a visitor who is not signed in opens the live channel
    Then the visitor is turned away as not signed in
    And the CMS was not asked about the visitor

  @forbidden
  Scenario: A fan of another organisation may not watch the event
    Given Bob is signed in for the organisation "Kosovo Motorsport" only
    When Bob opens the live map of the "Rally of Tirana"
    Then Bob is told that watching the "Rally of Tirana" is forbidden

  @fanout
  Scenario: Every fan watching the event sees the same new position
    Given Carol may watch the "Rally of Tirana"
    And Alice and Carol have the live map of the "Rally of Tirana" open
    When tracker-B reports the position 41.3310, 19.8260 at 2026-05-02 11:03:00
    Then Alice and Carol both see tracker-B move to 41.3310, 19.8260

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
  Scenario: Fans see each car's speed, heading, altitude and satellites as its tracker reports them
    Given Carol may watch the "Rally of Tirana"
    And Alice has the live map of the "Rally of Tirana" open
    When tracker-A reports this position at 2026-05-02 11:02:00:
      | latitude | longitude | speed (km/h) | heading (°) | altitude (m) | satellites |
      | 41.3290  | 19.8210   | 87.5         | 270         | 312.5        | 12         |
    Then Alice sees tracker-A move there with the speed, heading, altitude and satellites it reported
    When Carol opens the live map of the "Rally of Tirana"
    Then Carol sees tracker-A on the map with the speed, heading, altitude and satellites it reported

  @shared-tracker
  Scenario: A tracker fitted to two cars of the event is shown once, on the car the rules name
    Given tracker-S and tracker-T are each fitted to both car #7 and car #12
    And these positions were recorded:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-S | 2026-05-02 11:00:10 | 41.3250  | 19.8150   |
      | tracker-T | 2026-05-02 11:00:20 | 41.3260  | 19.8160   |
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice sees tracker-S and tracker-T on the map once each, on their car with the lowest entry id
    When tracker-S reports the position 41.3350, 19.8350 at 2026-05-02 11:02:00
    And tracker-T reports the position 41.3360, 19.8360 at 2026-05-02 11:02:10
    Then Alice sees tracker-S and tracker-T move once each, on their car with the lowest entry id

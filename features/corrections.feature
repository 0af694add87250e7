@corrections
Feature: Race control's corrections reach the live map at once
  Race control corrects what the map shows during a rally: a position from a GPS jump is flagged as faulty, a
  car is withdrawn, a tracker is fitted to a car. Fans already watching see the correction at once, without
  reopening the map, and fans of other events see nothing of it.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these entries:
      | car | crew             | trackers  |
      | #7  | Hoxha / Dervishi | tracker-A |
      | #12 | Leka / Marku     | tracker-B |
    And these positions were recorded:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:00:00 | 41.3270  | 19.8190   |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |
    And Alice may watch the "Rally of Tirana"
    And the Processor is listening for race control's corrections

  @flag-faulty
  Scenario: A car's latest position flagged as faulty goes back to its last sound position
    Given the organisation "Kosovo Motorsport" runs the event "Rally of Prishtina"
    And the "Rally of Prishtina" has these entries:
      | car | crew            | trackers  |
      | #3  | Berisha / Gashi | tracker-K |
    And these positions were recorded:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-K | 2026-05-02 11:00:00 | 42.6600  | 21.1600   |
      | tracker-K | 2026-05-02 11:01:00 | 42.6610  | 21.1610   |
    And Bob may watch the "Rally of Prishtina"
    And Alice has the live map of the "Rally of Tirana" open
    And Bob has the live map of the "Rally of Prishtina" open
    When race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty
    Then Alice sees tracker-A go back to 41.3270, 19.8190 within 1 second
    When race control flags the position of tracker-K at 2026-05-02 11:01:00 as faulty
    Then Bob sees tracker-K go back to 42.6600, 21.1600 within 1 second
    And Bob was told nothing about the "Rally of Tirana"

  @all-faulty
  Scenario: A tracker whose every position is flagged as faulty disappears from the map
    Given Alice has the live map of the "Rally of Tirana" open
    When race control flags every position of tracker-B as faulty
    Then Alice sees tracker-B disappear from the map within 1 second
    And Alice's map shows tracker-A at 41.3280, 19.8200

  @flag-cleared
  Scenario: A flag cleared by race control puts the car back at that position, on open and new maps alike
    Given the position of tracker-A at 2026-05-02 11:01:00 is flagged as faulty
    And Alice has the live map of the "Rally of Tirana" open
    When race control clears the flag on the position of tracker-A at 2026-05-02 11:01:00
    Then Alice sees tracker-A go back to 41.3280, 19.8200 within 1 second
    Given Carol may watch the "Rally of Tirana"
    When Carol opens the live map of the "Rally of Tirana"
    Then Carol sees these cars on the map:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |

  @withdrawn
  Scenario: A car withdrawn from the event disappears from the maps of the fans watching
    Given Carol may watch the "Rally of Tirana"
    And Alice and Carol have the live map of the "Rally of Tirana" open
    When race control withdraws car #12 from the "Rally of Tirana"
    Then Alice sees tracker-B disappear from the map within 1 second
    And Carol sees tracker-B disappear from the map within 1 second
    And Alice's map shows tracker-A at 41.3280, 19.8200

  @fitted-mid-rally
  Scenario: A tracker fitted to a car mid-rally shows that car from its next position on
    Given Carol may watch the "Rally of Tirana"
    And Alice has the live map of the "Rally of Tirana" open
    When tracker-C is fitted to car #12
    And tracker-C reports the position 41.3320, 19.8280 at 2026-05-02 11:02:00
    Then Alice sees tracker-C move to 41.3320, 19.8280 within 1 second
    And Alice's map shows tracker-C at 41.3320, 19.8280
    When Carol opens the live map of the "Rally of Tirana"
    Then Carol sees these cars on the map:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |
      | tracker-C | 2026-05-02 11:02:00 | 41.3320  | 19.8280   |

  @corrections-after-restart @needs-service-control
  Scenario: After the database restarts, corrections still reach the fans watching
    Given Alice has the live map of the "Rally of Tirana" open
    When the database goes down
    Then the Processor reports the database as down
    When the database is back
    Then the Processor is healthy again
    And the Processor is listening for race control's corrections again
    When race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty
    Then Alice sees tracker-A go back to 41.3270, 19.8190 within 1 second

  @corrections-triggers
  Scenario: The database announces each correction in a small message that names only ids
    Given someone listens to the database's announcements of corrections
    When race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty
    And race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty
    And race control clears the flag on the position of tracker-A at 2026-05-02 11:01:00
    And race control flags every position of tracker-A as faulty
    And tracker-C is fitted to car #12
    And tracker-C is taken off its car
    And race control withdraws car #7 from the "Rally of Tirana"
    Then the database has announced exactly, in this order:
      | change    | car | tracker   |
      | faulty    |     | tracker-A |
      | faulty    |     | tracker-A |
      | faulty    |     | tracker-A |
      | fitted    | #12 | tracker-C |
      | removed   | #12 | tracker-C |
      | withdrawn | #7  | tracker-A |

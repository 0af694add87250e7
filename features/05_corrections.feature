@corrections
Feature: Race control's corrections reach the live map at once
  Race control corrects what the map shows during a rally: a position from a GPS jump is flagged as faulty, a
  car is withdrawn, a tracker is fitted to a car. Fans already watching see the correction at once, without
  reopening the map, and fans of other events see nothing of it.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these cars:
      | car | crew             | trackers  |
      | #7  | Hoxha / Dervishi | tracker-A |
      | #12 | Leka / Marku     | tracker-B |
    And these positions were recorded:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:00:00 | 41.3270  | 19.8190   |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |
    And Alice may watch the "Rally of Tirana"
    And the service is listening for race control's corrections

  @flag-faulty
  Scenario: A car's latest position flagged as faulty goes back to its last sound position
    Given the organisation "Kosovo Motorsport" runs the event "Rally of Prishtina"
    And the "Rally of Prishtina" has these cars:
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
    Then Bob sees tracker-K go back to 42.66, 21.16 within 1 second
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
  Scenario Outline: A car withdrawn, or a tracker taken off its car, disappears from the maps of the fans watching
    Given Carol may watch the "Rally of Tirana"
    And Alice and Carol have the live map of the "Rally of Tirana" open
    When <change>
    Then Alice sees tracker-B disappear from the map within 1 second
    And Carol sees tracker-B disappear from the map within 1 second
    And Alice's map shows tracker-A at 41.3280, 19.8200
    And the operator sees the 2 corrections the service sent to Alice and Carol

    Examples:
      | change                                                    |
      | race control withdraws car #12 from the "Rally of Tirana" |
      | tracker-B is taken off its car                            |

  @refitted
  Scenario Outline: A tracker fitted to a car, or moved to another, shows on that car at once, before it reports again
    Given tracker-D is on no car
    And these positions were recorded:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-D | 2026-05-02 11:00:45 | 41.3310  | 19.8230   |
    And Alice has the live map of the "Rally of Tirana" open
    When <tracker> is <change> car #12
    Then Alice sees <tracker> on car #12 at <latitude>, <longitude> within 1 second

    Examples:
      | tracker   | change      | latitude | longitude |
      | tracker-A | moved to    | 41.3280  | 19.8200   |
      | tracker-D | fitted to   | 41.3310  | 19.8230   |

  @fitted-mid-rally
  Scenario: A tracker fitted to a car during the rally is shown on the map from its next position on
    Given Carol may watch the "Rally of Tirana"
    And Alice has the live map of the "Rally of Tirana" open
    When tracker-C is fitted to car #12
    And tracker-C reports the position 41.3320, 19.8280 at 2026-05-02 11:02:00
    Then Alice sees tracker-C move to 41.3320, 19.8280 within 2 seconds
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
    Then the service reports the database as down
    And the service reports that it is not listening for race control's corrections
    When the database is back
    Then the service is healthy again
    And the service is listening for race control's corrections again
    And Alice is sent the cars on the map afresh, without asking
    When race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty
    Then Alice sees tracker-A go back to 41.3270, 19.8190 within 1 second

  @late-after-correction
  Scenario: A late position older than race control's correction does not undo it on the maps already open
    Given Alice has the live map of the "Rally of Tirana" open
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210
    When race control flags the position of tracker-A at 2026-05-02 11:02:00 as faulty
    Then Alice sees tracker-A go back to 41.3280, 19.8200 within 1 second
    When tracker-A reports the position 41.3285, 19.8205 at 2026-05-02 11:01:30
    And tracker-B reports the position 41.3310, 19.8260 at 2026-05-02 11:03:00
    Then Alice sees tracker-B move to 41.3310, 19.8260
    And Alice's map shows tracker-A at 41.3280, 19.8200

  @correction-overtaken
  Scenario: A correction overtaken by a newer position of the same car never moves the car back
    Given a service that stores the trackers' reports, and a second service, which takes no reports itself and reaches the database over a line the scenario can hold up or cut
    And Alice has the live map of the "Rally of Tirana" open through the second service
    When race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty, while the second service's look-up of it is held up on its way
    And tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:01:05
    Then Alice sees tracker-A move to 41.3290, 19.8210
    When the held-up answer reaches the second service
    And race control flags every position of tracker-B as faulty
    Then Alice sees tracker-B disappear from the map within 1 second
    And Alice's map shows tracker-A at 41.3290, 19.8210

  @commit-order
  Scenario: Corrections made one right after the other reach the map in the order race control made them
    Given a second service, which takes no reports itself and reaches the database over a line the scenario can hold up or cut
    And Alice has the live map of the "Rally of Tirana" open through the second service
    When race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty, while the second service's look-up of it is held up on its way
    And race control clears the flag on the position of tracker-A at 2026-05-02 11:01:00
    And the held-up answers reach the second service, the latest first
    Then Alice's map ends showing tracker-A at 41.3280, 19.8200

  @correction-while-loading
  Scenario: A correction made while a fan's map is still loading waits for the map, then applies to it
    Given a second service, which takes no reports itself and reaches the database over a line the scenario can hold up or cut
    And Alice is connected to the second service
    When Alice opens the live map of the "Rally of Tirana" through the second service, and its fresh map is held up on its way
    And race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty, while the second service's look-up of it is held up on its way
    And the held-up answers reach the second service, the correction first
    Then Alice's map ends showing tracker-A at 41.3270, 19.8190

  @stale-correction-while-loading
  Scenario: A correction read before a newer position, reaching a map still loading that shows the newer one, is dropped
    Given a service that stores the trackers' reports, and a second service, which takes no reports itself and reaches the database over a line the scenario can hold up or cut
    And Alice has the live map of the "Rally of Tirana" open through the second service
    When race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty, while the second service's look-up of it is held up on its way
    And Alice stops following the "Rally of Tirana"
    And tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:01:05
    Then the position of tracker-A at 2026-05-02 11:01:05 is stored
    When Alice opens the live map of the "Rally of Tirana" through the second service, and its fresh map is held up on its way
    And the held-up answers reach the second service, the correction first
    Then Alice's map ends showing tracker-A at 41.3290, 19.8210

  @missed-corrections
  Scenario Outline: A correction the service missed still reaches the maps already open, without reopening them
    Given a second service, which takes no reports itself and reaches the database over a line the scenario can hold up or cut
    And Alice has the live map of the "Rally of Tirana" open through the second service
    When race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty while <trouble>
    Then Alice sees tracker-A go back to 41.3270, 19.8190 without reopening her map

    Examples: the service's connection for corrections, or one look-up, is lost
      | trouble                                                                          |
      | the second service's connection for corrections is cut and cannot be made again |
      | the second service's look-up of it is cut off on its way                         |

    @needs-service-control
    Examples: the database restarts
      | trouble                                                           |
      | the database restarts and the second service cannot reach it yet |

    @slow
    Examples: the connection dies without a word
      | trouble                                                                                |
      | the second service's connection for corrections has silently stopped passing anything |

  @correction-hints
  Scenario Outline: An announcement of a change that did not happen changes nothing on the map
    Given Alice has the live map of the "Rally of Tirana" open
    When the database announces by mistake that <mistake>
    And race control flags every position of tracker-B as faulty
    Then Alice sees tracker-B disappear from the map within 1 second
    And Alice's map shows tracker-A at 41.3280, 19.8200
    And the operator sees 2 announcements from the database counted, 0 of them unreadable

    Examples:
      | mistake                                                  |
      | tracker-A was taken off car #7                           |
      | the position of tracker-A at 2026-05-02 11:01:00 is faulty |

  @unreadable-announcement
  Scenario: An announcement the service cannot read is counted, written once in its log, and changes nothing
    Given Alice has the live map of the "Rally of Tirana" open
    When the database announces something the service cannot read
    And race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty
    Then Alice sees tracker-A go back to 41.3270, 19.8190 within 1 second
    And the operator sees 2 announcements from the database counted, 1 of them unreadable
    And the service's log warns once about an announcement it could not read

  @corrections-triggers
  Scenario: The database announces each correction in a small message that names only ids
    Given someone listens to the database's announcements of corrections
    When race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty
    And race control flags the position of tracker-A at 2026-05-02 11:01:00 as faulty
    And race control clears the flag on the position of tracker-A at 2026-05-02 11:01:00
    And race control flags every position of tracker-A as faulty
    And race control flags the position of tracker-B at 2026-05-02 11:00:30 as faulty, then thinks better of it before saving
    And tracker-C is fitted to car #12
    And tracker-C is moved to car #7
    And tracker-C is taken off its car
    And race control withdraws car #7 from the "Rally of Tirana"
    And the "Rally of Tirana" is deleted
    Then the database has announced exactly, in this order:
      | change    | car | tracker   |
      | faulty    |     | tracker-A |
      | faulty    |     | tracker-A |
      | faulty    |     | tracker-A |
      | fitted    | #12 | tracker-C |
      | removed   | #12 | tracker-C |
      | fitted    | #7  | tracker-C |
      | removed   | #7  | tracker-C |
      | withdrawn | #7  | tracker-A |
      | withdrawn | #12 | tracker-B |

  @latest-positions
  Scenario Outline: A map opened after someone changed the recorded positions directly shows each car's latest sound position
    Given Carol may watch the "Rally of Tirana"
    When <someone changes the positions>
    And Carol opens the live map of the "Rally of Tirana"
    Then Carol sees these cars on the map:
      | tracker   | time (UTC)          | latitude   | longitude   |
      | tracker-A | <time>              | <latitude> | <longitude> |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300    | 19.8250     |

    Examples:
      | someone changes the positions                                                                    | time                | latitude | longitude |
      | another program records a late position of tracker-A at 2026-05-02 11:00:40, at 41.3275, 19.8195 | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | race control corrects the position of tracker-A at 2026-05-02 11:01:00 to 41.3285, 19.8205      | 2026-05-02 11:01:00 | 41.3285  | 19.8205   |
      | race control deletes the position of tracker-A at 2026-05-02 11:01:00                            | 2026-05-02 11:00:00 | 41.3270  | 19.8190   |

  @latest-in-order
  Scenario: The service takes the latest positions of trackers reporting together in the order of their ids, so two services never block each other
    Given these positions were recorded:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-C | 2026-05-02 11:00:40 | 41.3320  | 19.8280   |
    And another program holds the latest position of the middle one of tracker-A, tracker-B and tracker-C, in the order of their ids
    When tracker-A, tracker-B and tracker-C report positions at the same moment, the one with the highest id first
    Then the service is held up by that program, having taken the first of them in the order of their ids and not yet the last
    When the other program lets go
    Then the positions they reported are stored

  @history-wiped
  Scenario: Wiping the whole history of positions wipes the latest positions with it
    When someone wipes every recorded position at once, and undoes it before anyone else sees
    Then while the history was wiped, the database held no latest position either

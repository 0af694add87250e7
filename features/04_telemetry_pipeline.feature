@pipeline
Feature: From the trackers to the database and the live map
  Every position a tracker reports is stored once, however often it arrives. Broken reports are set aside with
  the reason and never hold up the others. Each position is shown to the fans of the event its car races in
  right now, and to nobody else; a fan who opens the map while the cars are reporting sees every position from
  then on, once each and in order.

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

  @stored
  Scenario: A reported position is stored and is on the map of a fan who opens it afterwards
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then the position of tracker-A at 2026-05-02 11:02:00 is stored as 41.3290, 19.8210, taken from its report
    And the time it took to store the position has been measured
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice sees these cars on the map:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:02:00 | 41.3290  | 19.8210   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |

  @duplicate
  Scenario: A position that arrives twice is stored once and shown once
    Given Alice has the live map of the "Rally of Tirana" open
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210
    When tracker-A's report of 2026-05-02 11:02:00 arrives once more
    And tracker-C's position 41.3320, 19.8270 at 2026-05-02 11:02:30 arrives twice in a row
    And tracker-B reports the position 41.3310, 19.8260 at 2026-05-02 11:03:00
    Then Alice sees tracker-B move to 41.3310, 19.8260
    And Alice sees tracker-C move to 41.3320, 19.8270
    And each of these positions is stored exactly once:
      | tracker   | time (UTC)          |
      | tracker-A | 2026-05-02 11:02:00 |
      | tracker-C | 2026-05-02 11:02:30 |
    And the position of tracker-A at 2026-05-02 11:02:00 is still stored as taken from its first report
    And Alice never receives the same position twice

  @broken-reports
  Scenario: Broken reports are set aside with their reason and the live map carries on
    Given Alice has the live map of the "Rally of Tirana" open
    When tracker-A sends these broken reports:
      | problem                                                       | reason                           |
      | the position details are cut short                            | unreadable                       |
      | the tracker id is missing                                     | a required detail is missing     |
      | the tracker id is garbled                                     | garbled characters               |
      | the time has no offset from UTC                               | the time is unusable             |
      | the time is given to the ten-thousandth of a second           | the time is unusable             |
      | the tracker id has a space in it                              | the tracker id is invalid        |
      | the tracker id is 65 characters long                          | the tracker id is invalid        |
      | the codec is 0C                                               | the format is unknown            |
      | the position details are a list                               | the position details are invalid |
      | the longitude is missing                                      | the position details are invalid |
      | the speed is written as text                                  | the position details are invalid |
      | the heading is 360.5                                          | the position details are invalid |
      | the speed is -1                                               | the position details are invalid |
      | the car sees 2147483648 satellites                            | the position details are invalid |
      | the altitude is a number too large to exist                   | the position details are invalid |
      | a sensor reading is a big number with a letter in it          | the position details are invalid |
      | a sensor reading is a big number beyond the largest allowed   | the position details are invalid |
      | a sensor reading is a plain number beyond the largest allowed | the position details are invalid |
      | a sensor reading's bytes are written with stray bits          | the position details are invalid |
      | a sensor reading holds a null character                       | the position details are invalid |
      | a sensor reading holds half a character                       | the position details are invalid |
      | the latitude is 91.5                                          | the latitude is impossible       |
      | the longitude is 181                                          | the longitude is impossible      |
    And tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210
    And each broken report is set aside, untouched, with its reason
    And each broken report has been counted under its reason
    And none of the broken reports is left waiting
    And none of the broken reports is stored

  @broken-reports-kept
  Scenario: Broken reports that cannot be set aside yet are kept until they can be
    Given a service of this scenario's own
    And broken reports cannot be set aside for now
    When tracker-A sends these broken reports:
      | problem                   | reason                       |
      | the latitude is 91.5      | the latitude is impossible   |
      | the tracker id is missing | a required detail is missing |
    Then the broken reports are kept, not set aside
    When broken reports can be set aside again
    Then each broken report is set aside, untouched, with its reason
    And none of the broken reports is left waiting

  @tracker-removed
  Scenario: A tracker taken off its car during the rally is kept but no longer shown
    Given Alice has the live map of the "Rally of Tirana" open
    When tracker-B is taken off its car
    And tracker-B reports the position 41.3340, 19.8340 at 2026-05-02 11:05:10
    And tracker-A reports the position 41.3350, 19.8350 at 2026-05-02 11:05:20
    Then Alice sees tracker-A move to 41.3350, 19.8350
    And Alice gets no new position of tracker-B
    And exactly 1 orphan position has been counted
    And exactly 1 position has been counted as sent out to fans
    And the position of tracker-B at 2026-05-02 11:05:10 is stored

  @event-isolation
  Scenario: Fans see only the positions of the events they follow
    Given the organisation "Kosovo Motorsport" runs the event "Rally of Prishtina"
    And the "Rally of Prishtina" has these cars:
      | car | crew            | trackers  |
      | #3  | Berisha / Gashi | tracker-P |
    And Alice may watch the "Rally of Prishtina"
    And Dan may watch the "Rally of Tirana"
    And Alice has the live map of the "Rally of Tirana" open
    And Alice has the live map of the "Rally of Prishtina" open
    And Dan has the live map of the "Rally of Tirana" open
    When tracker-A and tracker-P each report 20 positions, taking turns
    Then Alice receives all 40 of them, each on the map of its own event
    And Dan receives the 20 positions of tracker-A
    And Dan never sees tracker-P

  @unfollow
  Scenario: A fan who stops following one event keeps following the others
    Given the organisation "Kosovo Motorsport" runs the event "Rally of Prishtina"
    And the "Rally of Prishtina" has these cars:
      | car | crew            | trackers  |
      | #3  | Berisha / Gashi | tracker-P |
    And Alice may watch the "Rally of Prishtina"
    And Alice has the live map of the "Rally of Tirana" open
    And Alice has the live map of the "Rally of Prishtina" open
    When Alice stops following the "Rally of Prishtina"
    And tracker-A and tracker-P each report 20 positions, taking turns
    Then Alice is told she no longer follows the "Rally of Prishtina"
    And Alice receives the 20 positions of tracker-A
    And Alice receives none of the positions of tracker-P

  @snapshot-boundary
  Scenario: A fan who opens the map while the cars are reporting misses nothing and sees nothing twice
    Given Carol may watch the "Rally of Tirana"
    And tracker-A, tracker-B and tracker-C keep reporting their positions
    When Alice opens the live map of the "Rally of Tirana"
    And Carol opens the live map of the "Rally of Tirana"
    And the trackers report 60 more positions and stop
    Then Alice and Carol receive every position reported after their map opened
    And neither Alice nor Carol receives any position twice
    And Alice and Carol see each tracker's positions in time order, without a gap

  @duplicate-count
  Scenario: A position that arrives several times is counted as a duplicate each time, never as an orphan
    Given Alice has the live map of the "Rally of Tirana" open
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice sees tracker-A move to 41.3290, 19.8210
    When tracker-A's report of 2026-05-02 11:02:00 arrives 3 more times
    And tracker-B reports the position 41.3310, 19.8260 at 2026-05-02 11:03:00
    Then Alice sees tracker-B move to 41.3310, 19.8260
    And exactly 3 duplicate positions have been counted
    And exactly 2 positions have been counted as stored
    And no orphan position has been counted

  @moved-tracker
  Scenario: A tracker moved to another car, or taken off, after it has reported is routed anew from its next position
    Given Alice has the live map of the "Rally of Tirana" open
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    And tracker-B reports the position 41.3310, 19.8260 at 2026-05-02 11:02:05
    Then Alice sees tracker-A move to 41.3290, 19.8210 on car #7
    And Alice sees tracker-B move to 41.3310, 19.8260 on car #12
    When tracker-A is moved to car #12
    And tracker-B is taken off its car
    And tracker-A reports the position 41.3300, 19.8220 at 2026-05-02 11:02:10
    And tracker-B reports the position 41.3320, 19.8270 at 2026-05-02 11:02:15
    And tracker-C reports the position 41.3330, 19.8280 at 2026-05-02 11:02:20
    Then Alice sees tracker-A move to 41.3300, 19.8220 on car #12
    And Alice sees tracker-C move to 41.3330, 19.8280
    And Alice is not shown tracker-B's position of 2026-05-02 11:02:15
    And exactly 1 orphan position has been counted
    And the position of tracker-B at 2026-05-02 11:02:15 is stored

  @local-time
  Scenario Outline: A tracker that reports its local time is stored and shown at the right moment in UTC
    Given Alice has the live map of the "Rally of Tirana" open
    When tracker-A reports the position 41.3290, 19.8210 with its local clock reading <local time>
    Then Alice sees tracker-A move to 41.3290, 19.8210 at 2026-05-02 11:02:00 UTC
    And the position of tracker-A at 2026-05-02 11:02:00 is stored

    Examples:
      | local time                    |
      | 2026-05-02T13:02:00.000+02:00 |
      | 2026-05-02T07:32:00.000-0330  |

  @report-formats
  Scenario Outline: A report written in any of the accepted ways is stored and shown as reported
    Given Alice has the live map of the "Rally of Tirana" open
    When tracker-A sends the position 41.3290, 19.8210 at 2026-05-02 11:02:00, written <written how>
    Then Alice sees tracker-A move there with the speed, heading, altitude and satellites it reported
    And the position of tracker-A at 2026-05-02 11:02:00 is stored as 41.3290, 19.8210, taken from its report

    Examples:
      | written how                                                       |
      | with the format code 08                                           |
      | with the format code 10                                           |
      | with the format code 8e, in lower case                            |
      | with the time to the millionth of a second, ending in zeros       |
      | with a detail the service does not know                           |
      | with the heading at 360, the speed at 0 and 2147483647 satellites |

  @longest-tracker-id
  Scenario: A tracker whose id is as long as allowed is stored and shown
    Given tracker-L's id is as long as allowed, made of letters, digits and the signs _ . : -
    And Alice has the live map of the "Rally of Tirana" open
    When tracker-L is fitted to car #7
    And tracker-L reports the position 41.3330, 19.8330 at 2026-05-02 11:05:00
    Then Alice sees tracker-L move to 41.3330, 19.8330
    And the position of tracker-L at 2026-05-02 11:05:00 is stored as 41.3330, 19.8330, taken from its report

  @sensor-readings
  Scenario: A tracker's sensor readings are stored exactly, however large their numbers
    When tracker-A reports its sensor readings with the position 41.3290, 19.8210 at 2026-05-02 11:02:00:
      | sensor | reading                                                   | written as      |
      | 16     | 9007199254740991                                          | a plain number  |
      | 17     | 9007199254740993                                          | a plain number  |
      | 18     | 1152921504606846977                                       | a plain number  |
      | 19     | 18446744073709551615                                      | a big number    |
      | 20     | -9223372036854775808                                      | a big number    |
      | 21     | 7                                                         | a big number    |
      | 22     | 01 02 03 fe ff                                            | bytes           |
      | 23     | {"$bigint": "1", "note": "two details: not a big number"} | a record, as is |
    Then the position of tracker-A at 2026-05-02 11:02:00 is stored with exactly those sensor readings

  @batch-order
  Scenario: A tracker catching up on positions it could not send is shown moving in time order
    Given Alice has the live map of the "Rally of Tirana" open
    And the database stalls and stores nothing for now
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    And the service is storing it
    Then Alice gets no new position of tracker-A
    When tracker-A sends the positions it could not send before, all at once and out of order:
      | time (UTC)          | latitude | longitude |
      | 2026-05-02 11:02:03 | 41.3293  | 19.8213   |
      | 2026-05-02 11:02:01 | 41.3291  | 19.8211   |
      | 2026-05-02 11:02:04 | 41.3294  | 19.8214   |
      | 2026-05-02 11:02:02 | 41.3292  | 19.8212   |
    And the database stays stalled for 2.5 seconds, while the service keeps waiting to store
    And the database is no longer stalled
    Then Alice sees tracker-A's positions one after the other in time order:
      | time (UTC)          |
      | 2026-05-02 11:02:00 |
      | 2026-05-02 11:02:01 |
      | 2026-05-02 11:02:02 |
      | 2026-05-02 11:02:03 |
      | 2026-05-02 11:02:04 |

  @backlog-reading
  Scenario Outline: A backlog is taken a set number of reports at a time, and the operator sees how much waits
    Given <service>
    And the database stalls and stores nothing for now
    When the trackers of the "Rally of Tirana" report 1,200 positions at the same moment
    Then the service has taken <taken> of them to store, and <waiting> wait to be read
    And the service shows <taken> reports taken but not yet stored, and <waiting> waiting to be read
    When the database is no longer stalled
    Then each of the 1,200 positions is stored exactly once

    Examples: one set of reports being stored, the next read ahead
      | service                                          | taken | waiting |
      | the service, taking its default number at a time | 1000  | 200     |
      | a second service that takes 50 reports at a time | 100   | 1100    |

  @counted-before-passed-on
  Scenario: Every position is counted before it is passed on to the other instances
    Given a service of this scenario's own, which can be kept waiting right after it passes positions on
    And tracker-Z is on no car
    And another instance listens to what the service passes on
    When the service will be kept waiting as soon as it has passed positions on
    And tracker-A and tracker-Z report these positions at the same moment:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:02:00 | 41.3290  | 19.8210   |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-Z | 2026-05-02 11:02:00 | 41.3400  | 19.8400   |
    Then by the time the other instance gets them, the service has counted 2 stored, 1 duplicate and 1 orphan positions

  @loading-window
  Scenario: Positions stored while a fan's map is loading are each shown once, none lost
    Given Carol may watch the "Rally of Tirana"
    And Carol has the live map of the "Rally of Tirana" open
    And the database stalls and stores nothing for now
    When tracker-A and tracker-B report these positions at the same moment:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:02:00 | 41.3290  | 19.8210   |
      | tracker-B | 2026-05-02 11:02:30 | 41.3310  | 19.8260   |
    And Alice opens the live map of the "Rally of Tirana", which is still loading while those positions are stored and sent out to Carol
    And tracker-C reports the position 41.3330, 19.8280 at 2026-05-02 11:03:00
    Then Alice sees tracker-C move to 41.3330, 19.8280
    And Alice has seen each position stored while her map was loading exactly once
    And Alice never receives the same position twice

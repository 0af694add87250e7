@scale-out
Feature: Several Processors share the work
  For a big rally the Processor runs as several instances side by side. Together they store every position
  exactly once, every fan sees every position whichever instance stored it, and when an instance dies in the
  middle of its work another one finishes that work.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these entries:
      | car | crew             | trackers             |
      | #7  | Hoxha / Dervishi | tracker-A, tracker-B |
      | #12 | Leka / Marku     | tracker-C, tracker-D |
    And Alice may watch the "Rally of Tirana"

  @concurrent-duplicates
  Scenario: Two Processors storing the same position at the same moment keep a single copy
    Given Processors north and south each read every report of one telemetry stream
    And the database stalls and stores nothing for now
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    And Processors north and south are both about to store it
    And the database is no longer stalled
    Then the position of tracker-A at 2026-05-02 11:02:00 is stored exactly once
    And no report is left pending

  @exactly-once
  Scenario: Two Processors sharing a stream store every position once, and the fans of both see all of them
    Given Carol may watch the "Rally of Tirana"
    And Processors north and south share the reports of one telemetry stream
    And Alice follows the "Rally of Tirana" through Processor north
    And Carol follows the "Rally of Tirana" through Processor south
    When the trackers of the "Rally of Tirana" report 500 positions in a burst
    Then each of the 500 positions is stored exactly once
    And no report is left pending
    And Alice and Carol each receive all 500 positions, each of them once

  @crash-recovery
  Scenario: When a Processor dies in the middle of its work, another one finishes it
    Given Processors north and south are set up to share one telemetry stream and to take over each other's stuck work quickly
    And the database stalls and stores nothing for now
    And the trackers of the "Rally of Tirana" have reported 300 positions in a burst
    When Processor north starts
    And Processor north has taken reports it has not stored yet
    And Processor north dies suddenly
    And the database is no longer stalled
    And Processor south starts
    Then each of the 300 positions is stored exactly once
    And no report is left pending

  @restart-recovery
  Scenario: A Processor that dies in the middle of its work finishes it as soon as it is back
    Given Processor north is set up to read one telemetry stream on its own, handing stuck work over only after 10 minutes
    And the database stalls and stores nothing for now
    And the trackers of the "Rally of Tirana" have reported 120 positions in a burst
    When Processor north starts
    And Processor north has taken reports it has not stored yet
    And Processor north dies suddenly
    And the database is no longer stalled
    And Processor north starts again under the same name
    Then each of the 120 positions is stored exactly once
    And no report is left pending

  @answer-in-flight
  Scenario: Positions stored while a fan's map is on its way to the fan are shown live, none lost
    Given Carol may watch the "Rally of Tirana"
    And Processor north stores the reports of one telemetry stream, and Processor south serves fans from the same stream over a slow link to the database
    And Carol follows the "Rally of Tirana" through Processor south
    And Alice has the live channel of Processor south open
    When Alice opens the live map of the "Rally of Tirana", whose snapshot is read but held up on its way to Processor south while these positions are stored and sent out to Carol:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:02:00 | 41.3290  | 19.8210   |
      | tracker-C | 2026-05-02 11:02:30 | 41.3310  | 19.8260   |
    Then Alice has seen each position stored while her map was loading exactly once
    And Alice never receives the same position twice
    And every connection over the slow link that stored positions said it keeps the latest positions itself

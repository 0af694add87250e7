@load
Feature: Live broadcast under a steady load
  A busy rally weekend: many trackers reporting several times a second, fans following several events at
  once. The Processor keeps up: nothing is lost, nothing is doubled, and every fan sees each car's positions
  in the order its tracker reported them, and only the cars of the event they watch.

  @steady-load
  Scenario: Two events, four fans, 200 positions per second for 5 seconds
    Given the organisation "Load Rally Club" runs 2 events with 10 trackers each
    And 2 fans have the live map of each event open
    When the trackers report 200 positions per second for 5 seconds
    Then every reported position is stored exactly once
    And every fan receives every position of their event exactly once, in the order each tracker reported it

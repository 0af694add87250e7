@start-up
Feature: The service starts as it is configured, or says at once what is wrong
  An operator deploys the service with a handful of settings. A setting left out (or left empty) takes its
  documented default. A setting that makes no sense stops the service at once, with one line naming it, and so
  does a database that lacks something the service needs: a deployment mistake is found at start, not during a
  rally. A database or telemetry feed that cannot be reached yet does not stop it: the service starts, says what
  is missing, and keeps trying, waiting longer each time, until it is there.

  @defaults
  Scenario Outline: A service given only the addresses it needs uses the documented defaults
    When a new service is started with nothing but the addresses of the database, the telemetry feed and the CMS, every other setting <other settings>
    Then the new service answers on 127.0.0.1 at port 8080, and on no other address of the machine
    And it reads the telemetry feed "telemetry:teltonika" in the group "processor", under its host name and process number
    And it waits up to 1 second at a time for new positions, and takes at most 500 at a time
    And it takes over work that another service left unfinished once that work has waited 30 seconds
    And it logs one line per event, each with the time, the level and where it comes from, and writes nothing else
    And its log has lines of information but none for debugging

    Examples:
      | other settings |
      | left out       |
      | left empty     |

  @own-settings
  Scenario: A service given settings of its own follows each of them
    Given tracker-A has already reported 3 positions to the telemetry feed of a new service
    When the new service is started with these settings:
      | setting                                           | value                   |
      | the address it listens on                         | 127.0.0.2               |
      | the least important lines it logs                 | warnings                |
      | the longest it waits for new positions at a time  | 0.25 seconds            |
      | the most positions it takes at a time             | 50                      |
      | where it starts reading a feed it has never read  | after the last position |
    Then the new service answers on 127.0.0.2 and not on 127.0.0.1
    And it waits up to 0.25 seconds at a time for new positions, and takes at most 50 at a time
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then the position of tracker-A at 2026-05-02 11:02:00 is stored
    And none of the 3 positions tracker-A reported before the new service started is stored
    And its log has no line less important than a warning

  @misconfigured
  Scenario Outline: A service started with a setting that makes no sense stops at once and names the setting
    The feed's timeout is the longest the service waits for an answer from the telemetry feed; it must be longer
    than the 1 second the service waits for new positions at a time. A fan's backlog must hold at least two of
    the 500 positions the service reads at a time.

    When a new service is started with <setting> <how>
    Then it stops at once as misconfigured, with one line naming <setting>

    Examples:
      | setting                                        | how                         |
      | the address of the telemetry feed              | left out                    |
      | the address of the database                    | left empty                  |
      | the port                                       | set to "abc"                |
      | how far behind a map may fall                  | set to "0"                  |
      | the allowed web sites                          | set to "live.example.com"   |
      | the allowed web sites                          | set to "null"               |
      | the allowed web sites                          | set to "https://live.example.com/map"  |
      | the allowed web sites                          | set to "https://live.example.com/?x=1" |
      | the feed's timeout                             | set to "1"                  |
      | the messages a fan's backlog may hold          | set to "999"                |

  @schema-incomplete
  Scenario Outline: A service started on a database that lacks something it needs stops at once and names it
    Given a database of its own without <what it lacks>
    When a new service is started on that database
    Then it stops at once because the database is incomplete, with one line naming <named>

    Examples:
      | what it lacks                                                                      | named                     |
      | the flag that marks a position as faulty                                           | "positions" and "faulty"  |
      | the table of each tracker's latest position                                        | "latest_positions"        |
      | the rule that a tracker has one position per moment                                | "positions" and "unique"  |
      | the trigger that keeps each tracker's latest position true when a position changes | "latest_positions_update" |

  @schema-variants
  Scenario Outline: A service runs on a database that differs from the reference in ways it allows, and changes nothing there
    Given a database of its own without <what it lacks>
    When a new service is started on that database
    Then the new service is healthy
    And it has warned <warning>
    When tracker-A's position 41.3275, 19.8187 at 2026-05-02 11:00:00 arrives twice in a row
    Then that position is stored once in that database
    And the database defines exactly what it did before the new service started

    Examples:
      | what it lacks                                                                   | warning                                                                           |
      | the trigger that announces a position flagged as faulty                         | once that corrections will not reach open maps, naming "live_corrections_faulty" |
      | its primary key, a unique index keeping one position per tracker and moment instead | of nothing                                                                    |

  @dependency-down
  Scenario Outline: A service started while <dependency> cannot be reached is up at once, keeps trying, and recovers
    Given <dependency> cannot be reached from a new service
    When the new service starts
    Then the new service answers at once that <dependency> is down
    And it logs each failed attempt to reach <dependency> in one line, waiting 0.1 second and then twice as long each time
    When <dependency> can be reached again
    Then the new service is healthy
    And it logs one line per event, each with the time, the level and where it comes from, and writes nothing else

    Examples:
      | dependency         |
      | the database       |
      | the telemetry feed |

  @backoff-cap @slow
  Scenario: A service that cannot reach the database for a while tries again every 5 seconds at most
    Given the database cannot be reached from a new service
    When the new service starts
    Then it logs each failed attempt to reach the database in one line, waiting 0.1 second and then twice as long each time, but never more than 5 seconds

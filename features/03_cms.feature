@cms
Feature: Fans get the right answer whatever the CMS says about them
  Fans sign in on the CMS; the live map asks it who each fan is and which events they may watch. The
  CMS has several ways of saying no: a session it no longer recognises, one that has expired, a share link
  that belongs to nobody's account, a busy moment when it asks callers to slow down. Each fan is told what
  helps them (sign in again, try again shortly, not allowed), and nothing is counted as a CMS outage that
  is not one.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And Alice may watch the "Rally of Tirana"
    And Carol may watch the "Rally of Tirana"

  @session-expired
  Scenario Outline: A fan whose session the CMS no longer accepts is asked to sign in again
    Given Alice has the live map of the "Rally of Tirana" open
    When <what happens>
    And Alice tries to open the live map of the "Rally of Tirana"
    Then Alice is asked to sign in again and disconnected
    When Alice connects to the live map again
    Then Alice is turned away until she signs in again

    Examples:
      | what happens                                       |
      | the CMS changes the secret it signs sessions with  |
      | Alice's session expires                            |

  @share-link
  Scenario: A fan who came through a share link is turned away as not signed in, and no outage is counted
    When a fan with a share link of the CMS connects to the live map
    Then the fan is turned away as not signed in
    And the refusal is counted as a share link, not as a CMS outage

  @plain-sign-in
  Scenario Outline: A fan the CMS turns away without saying why is asked to sign in, not told of an outage
    Given the CMS turns Alice away <how>
    When Alice tries to connect to the live map
    And the page of our web site asks why Alice would be turned away
    Then Alice is turned away until she signs in again
    And the page learns that Alice must sign in
    And the service has counted the refusals as sessions that are not valid, not as a CMS outage

    Examples:
      | how                                          |
      | as not signed in, giving no reason           |
      | as not allowed, giving no reason             |
      | as not allowed, calling her access forbidden |

  @unknown-event
  Scenario Outline: Asking for an event that does not exist reveals nothing the CMS would not
    Given <what the CMS reveals>
    And the organisation "Kosovo Motorsport" runs the event "Rally of Prishtina"
    When Alice opens the live map of an event that does not exist
    And Alice opens the live map of the "Rally of Prishtina"
    Then Alice is told that watching the "Rally of Prishtina" is forbidden
    And for the event that does not exist, Alice was told <answer>
    And the service has counted <counted>

    Examples:
      | what the CMS reveals                                  | answer                                          | counted                                                           |
      | the CMS hides which events exist, as Directus does    | exactly what she was told for the forbidden one | both refusals as forbidden                                        |
      | the CMS is configured to reveal which events do not exist | that it does not exist                      | one refusal as forbidden and one as an event that does not exist |

  @cms-rate-limited
  Scenario: While the CMS is limiting requests, fans are asked to try again shortly, and get in once it passes
    Given Alice is connected to the live map
    And the CMS is limiting requests and has none left for now
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice is told to try again in a moment
    When Carol tries to connect to the live map
    Then Carol is turned away for now and told to try again in a moment
    And the service has counted both refusals as the CMS limiting requests, not as a CMS outage
    When the CMS limit passes
    Then Alice can still open the live map of the "Rally of Tirana"
    And Carol can open the live map of the "Rally of Tirana" again

  @cms-retry
  Scenario Outline: A fan the CMS asks to wait is checked again only if an answer can still come in time
    Given the live map is served by a service of this scenario's own
    And Alice is connected to the live map
    And the CMS allows no more requests for the next <wait>, and after that <then>
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice <is answered>
    And the CMS was asked <how often> whether Alice may watch the "Rally of Tirana"

    Examples:
      | wait        | then                   | is answered                                                       | how often |
      | 1 second    | answers as usual       | follows the "Rally of Tirana" within 3 seconds                    | twice     |
      | 1.9 seconds | answers as usual       | is told within 3 seconds to try again in a moment                 | once      |
      | 1.5 seconds | does not answer at all | is told within 3 seconds that the live map is unavailable for now | twice     |

  @cms-hold
  Scenario: While the CMS is known to refuse requests for longer than fans can wait, they are turned away without asking it
    Given the live map is served by a service of this scenario's own
    And Alice is connected to the live map
    And the CMS allows no more requests for the next 5 seconds, and after that answers as usual
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice is told within 3 seconds to try again in a moment
    And the CMS was asked once whether Alice may watch the "Rally of Tirana"
    When Carol tries to connect to the live map
    Then Carol is turned away for now without the CMS being asked

  @cms-crowd
  Scenario: A crowd arriving at once while the CMS limits requests costs it few wasted questions
    Given the live map is served by a service of this scenario's own
    And the CMS allows 10 requests a second and answers each after a quarter of a second
    When 100 fans connect to the live map at the same moment
    Then each of them is let in or turned away for now
    And the CMS was never asked more than 32 questions at once
    And once it has refused some, the CMS is asked at most one question more than it allows in each later window

  @pacing-ends @slow
  Scenario: Once the CMS has stopped refusing requests for a while, the service asks it at full speed again
    Given the live map is served by a service of this scenario's own
    And the CMS allows 2 requests a second and answers each after a quarter of a second
    And the CMS has no requests left in its current window
    And Alice is connected to the live map
    When the CMS limit passes
    Then for 10 seconds after its last refusal, the service asks the CMS about fans arriving together a few at a time, and about all of them at once from then on

  @two-tabs
  Scenario: A fan opening the live map in two tabs at the same moment costs the CMS one question of each kind
    Given the CMS answers each request after a quarter of a second
    When Alice opens the live map of the "Rally of Tirana" in two tabs at the same moment
    Then both of Alice's tabs show the live map of the "Rally of Tirana"
    And the CMS was asked who Alice is and whether she may watch the "Rally of Tirana", each only once

  @cms-down-while-watching
  Scenario Outline: A fan already watching is told at once when the CMS fails, and gets in once it is back
    Given Alice is connected to the live map
    And the CMS is down and <how it fails>
    When Alice tries to open the live map of the "Rally of Tirana"
    Then Alice is told within 3 seconds that the live map is unavailable for now
    And the service has counted the refusal as a CMS outage
    When the CMS is back
    Then Alice can still open the live map of the "Rally of Tirana"

    Examples:
      | how it fails                                   |
      | answers every request with an error            |
      | does not answer at all                         |
      | is not running at all                          |
      | refuses every request as locked by its licence |

  @cms-timeout
  Scenario Outline: The service gives a silent CMS the time it is set to give, then turns the fan away
    Given <the service>
    And the CMS is down and does not answer at all
    When Alice tries to connect to the live map
    Then Alice is turned away between <at least> and <less than> seconds after trying, because signing in is unavailable

    Examples:
      | the service                                                                           | at least | less than |
      | the live map is served by the service as it comes, which gives the CMS 2 seconds to answer | 1.5  | 3         |
      | the live map is served by a service that gives the CMS half a second to answer (a test setting) | 0.25 | 1.5 |

  @nameless-session
  Scenario: A fan the CMS calls signed in without saying who they are is not let in
    Given the CMS says Dave is signed in but does not say who he is
    When Dave tries to connect to the live map
    Then Dave is turned away because signing in is unavailable

  @no-shared-answers
  Scenario: A fan of another organisation is refused even right after a permitted fan opened the event
    Given Bob is signed in for the organisation "Kosovo Motorsport" only
    And Alice has the live map of the "Rally of Tirana" open
    When Bob tries to open the live map of the "Rally of Tirana"
    Then Bob is told that watching the "Rally of Tirana" is forbidden
    And the CMS was asked whether Bob may watch the "Rally of Tirana"

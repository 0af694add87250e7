@cms
Feature: Fans get the right answer whatever the CMS says about them
  Fans sign in on the CMS; the live map asks it who each visitor is and which events they may watch. The
  CMS has several ways of saying no: a session it no longer recognises, one that has expired, a share link
  that belongs to nobody's account, a busy moment when it asks callers to slow down. Each fan is told what
  helps them (sign in again, try again shortly, not allowed), and nothing is counted as a CMS outage that
  is not one.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And Alice may watch the "Rally of Tirana"
    And Carol may watch the "Rally of Tirana"

  @cms-secret-rotated
  Scenario: A fan whose session the CMS no longer recognises is asked to sign in again
    Given Alice has the live map of the "Rally of Tirana" open
    When the CMS changes the secret it signs sessions with
    And Alice opens the live map of the "Rally of Tirana"
    Then Alice is asked to sign in again and disconnected
    When Alice opens the live channel again
    Then Alice is turned away until she signs in again

  @session-expired
  Scenario: A fan whose session has expired is asked to sign in again
    Given Alice has the live map of the "Rally of Tirana" open
    When Alice's session expires
    And Alice opens the live map of the "Rally of Tirana"
    Then Alice is asked to sign in again and disconnected
    When Alice opens the live channel again
    Then Alice is turned away until she signs in again

  @share-link
  Scenario: A visitor who came through a share link is turned away as not signed in, and no outage is counted
    When a visitor with a share link of the CMS opens the live channel
    Then the visitor is turned away as not signed in
    And the refusal is counted as a share link, not as a CMS outage

  @unknown-event
  Scenario: Asking for an event that does not exist reveals nothing the CMS would not
    Given the organisation "Kosovo Motorsport" runs the event "Rally of Prishtina"
    When Alice opens the live map of an event that does not exist
    And Alice opens the live map of the "Rally of Prishtina"
    Then Alice is told that watching the "Rally of Prishtina" is forbidden
    And Alice got the same answer for the event that does not exist

  @cms-rate-limited
  Scenario: While the CMS is limiting requests, fans are asked to try again shortly, and get in once it passes
    Given Alice has the live channel open
    And the CMS is limiting requests and has none left for now
    When Alice opens the live map of the "Rally of Tirana"
    Then Alice is told to try again in a moment
    When Carol tries to open the live channel
    Then Carol is turned away for now and told to try again in a moment
    And the refusals are counted as the CMS limiting requests, not as a CMS outage
    When the CMS limit passes
    Then Alice can still open the live map of the "Rally of Tirana"
    And Carol can open the live map of the "Rally of Tirana" again

  @nameless-session
  Scenario: A visitor the CMS calls signed in without saying who they are is not let in
    Given the CMS says Dave is signed in but does not say who he is
    When Dave tries to open the live channel
    Then Dave is turned away because signing in is unavailable

  @no-shared-answers
  Scenario: A fan of another organisation is refused even right after a permitted fan opened the event
    Given Bob is signed in for the organisation "Kosovo Motorsport" only
    And Alice has the live map of the "Rally of Tirana" open
    When Bob opens the live map of the "Rally of Tirana"
    Then Bob is told that watching the "Rally of Tirana" is forbidden
    And the CMS was asked whether Bob may watch the "Rally of Tirana"

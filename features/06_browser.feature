@browser
Feature: Fans follow the rally live in their web browser
  The live map is a page of our web site; its own JavaScript connects to the live map, and the browser sends
  the session cookie the CMS set when the fan signed in. A real browser visits the page here, so these
  scenarios check what fans really get: which cookie the browser sends, what it lets the page learn of a
  refusal, and that the page knows what to tell the fan and when to stop trying.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these cars:
      | car | crew             | trackers  |
      | #7  | Hoxha / Dervishi | tracker-A |
      | #12 | Leka / Marku     | tracker-B |
    And these positions were recorded:
      | tracker   | time (UTC)          | latitude | longitude |
      | tracker-A | 2026-05-02 11:01:00 | 41.3280  | 19.8200   |
      | tracker-B | 2026-05-02 11:00:30 | 41.3300  | 19.8250   |
    And Alice may watch the "Rally of Tirana"

  @browser-happy-path
  Scenario: A signed-in fan's browser shows every car, then follows them live
    Given Alice has signed in on our web site
    When Alice opens the live map of the "Rally of Tirana" on our web site
    Then Alice's browser shows these cars:
      | tracker   | latitude | longitude |
      | tracker-A | 41.3280  | 19.8200   |
      | tracker-B | 41.3300  | 19.8250   |
    When tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice's browser shows tracker-A at 41.3290, 19.8210 within 1 second

  @browser-sign-in
  Scenario: A browser that is not signed in is asked to sign in, and the page waits for that
    When a fan who is not signed in visits the live map of the "Rally of Tirana" on our web site
    Then the fan's page says "Sign in to follow the rally live."
    And the fan's page shows no cars
    And the fan's page stops trying to connect

  @browser-cms-down
  Scenario: While the CMS is unavailable the page says so, and gets in by itself once it is back
    Given Alice has signed in on our web site
    And the CMS is down and answers every request with an error
    When Alice opens the live map of the "Rally of Tirana" on our web site
    Then Alice's page says "The live map is unavailable for now. Trying again…"
    When the CMS is back
    Then Alice's browser shows the live map

  @browser-foreign-site
  Scenario: A page of another web site cannot connect to the live map with a fan's cookie
    Given Alice has signed in on our web site
    When Alice opens the live map of the "Rally of Tirana" on another web site
    Then Alice's page says "This page may not show the live map."
    And Alice's page shows no cars
    And the CMS was not asked about Alice
    When Alice opens the live map of the "Rally of Tirana" on our web site
    Then Alice's browser shows the live map

  @browser-revoked
  Scenario: A fan whose session is revoked is told so, and the page stops
    Given the organisation "Albanian Rally Club" runs the event "Rally of Durres"
    And Alice may watch the "Rally of Durres"
    And Alice has signed in on our web site
    And Alice has the live map of the "Rally of Tirana" open in her browser
    When the CMS revokes Alice's session
    And Alice adds the "Rally of Durres" to her map
    Then Alice's page says "Your session has ended. Sign in again to follow the rally live."
    And Alice's page stops trying to connect

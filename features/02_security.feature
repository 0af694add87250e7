@security
Feature: Only signed-in fans reach the live map, and no one can harm it
  The live map answers only people the CMS knows, from our own web site. Whatever a client sends, broken
  or hostile, costs it an error message at most: the CMS and the database never see it, and the other fans
  watching the rally notice nothing. A fan may send about 20 requests a second (a short burst of twice that is
  fine); beyond that they are asked to slow down.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"
    And the "Rally of Tirana" has these cars:
      | car | crew             | trackers  |
      | #7  | Hoxha / Dervishi | tracker-A |
    And Alice may watch the "Rally of Tirana"
    And Carol may watch the "Rally of Tirana"

  @unknown-cookie
  Scenario Outline: A fan with a session the CMS does not accept is turned away
    When a fan with <session> connects to the live map
    Then the fan is turned away as not signed in
    And the service counts one refusal of a session the CMS does not know

    Examples:
      | session                             |
      | a made-up session cookie            |
      | a session the CMS will not describe |

  @hijacking
  Scenario Outline: Another web site cannot use a fan's session, even one whose address begins like ours
    When Alice's browser connects to the live map from the web site "<web site>"
    Then Alice is turned away as coming from a foreign web site
    And the CMS was not asked about Alice
    And the service counts one refusal of a foreign web site

    Examples:
      | web site                       |
      | evil.example.test              |
      | live.example.test.evil.example |

  @refusal-order
  Scenario Outline: A fan with several things wrong is turned away for the first of them
    When a fan who is not signed in connects to the live map <how>
    Then the fan is turned away <why>
    And the service counts one refusal of <counted>

    Examples:
      | how                                                                           | why                                                  | counted                                            |
      | from the web site "evil.example.test"                                 | as coming from a foreign web site                    | a foreign web site                                 |
      | from the web site "evil.example.test" in a language it does not speak | as coming from a foreign web site                    | a foreign web site                                 |
      | from our web site in a language it does not speak                             | for asking for a language the live map does not speak | a request in a language the live map does not speak |
      | from our web site                                                             | as not signed in                                     | a fan who is not signed in                     |

  @malformed-messages
  Scenario Outline: A malformed message is answered with an error and the live map stays usable
    Given Alice is connected to the live map
    When Alice sends the malformed message "<message>"
    Then Alice is told the message was malformed
    And Alice can still open the live map of the "Rally of Tirana"

    Examples:
      | message                                           |
      | text that is not JSON                             |
      | a list instead of an object                       |
      | a message of an unknown type                      |
      | a request to follow with no event                 |
      | a message that is not text                        |
      | a message of the largest size the live map accepts |

  @hostile-ids
  Scenario Outline: A hostile event id never reaches the CMS or the database
    Given a service whose conversation with the database is overheard
    And Alice is connected to that service
    When Alice asks to follow the event <event id>
    Then Alice is told the message was malformed
    And Alice can still open the live map of the "Rally of Tirana"
    And the CMS was asked about no event but the "Rally of Tirana"
    And the database heard of no event but the "Rally of Tirana"

    Examples:
      | event id                          |
      | written like an SQL injection     |
      | pointing at another CMS path      |
      | far longer than any real event id |
      | written with look-alike digits    |

  @oversized
  Scenario: A fan sending a huge message is cut off, and nobody else notices
    Given Alice and Carol have the live map of the "Rally of Tirana" open
    When Alice sends a message larger than the live map accepts
    And tracker-A reports the position 41.3290, 19.8210 at 2026-05-02 11:02:00
    Then Alice is disconnected for sending a message that is too large
    And Carol sees tracker-A move to 41.3290, 19.8210

  @frame-limit
  Scenario: A service set up for shorter messages cuts a fan off at its own limit
    Given a service that accepts messages of at most 1,024 characters (a test setting; the product accepts 65,536)
    And Alice is connected to that service
    When Alice sends a message of 1,024 characters
    Then Alice is told the message was malformed
    When Alice sends a message of 1,025 characters
    Then Alice is disconnected for sending a message that is too large

  @flood
  Scenario: A fan flooding the live map with requests is slowed down, and nobody else notices
    Given Alice and Carol have the live map of the "Rally of Tirana" open
    When Alice asks to follow the "Rally of Tirana" 500 times in one burst
    And tracker-A reports the position 41.3291, 19.8211 at 2026-05-02 11:02:01
    Then Alice gets an answer to each request, most of them asking her to slow down
    And the CMS was asked about Alice's requests far fewer than 500 times
    And Carol sees tracker-A move to 41.3291, 19.8211

  @subscribe-rate
  Scenario Outline: A fan's requests beyond the rate the service allows are refused at once and cost the CMS nothing
    Given a service that <allows>
    And Alice is connected to that service
    When Alice asks to follow 500 different events in one burst
    Then Alice gets an answer to each request, most of them asking her to slow down
    And about <rate> of Alice's requests a second were let through, after a first burst of twice that
    And the CMS was asked only about the requests that were let through

    Examples:
      | allows                                 | rate |
      | keeps the usual limits                 | 20   |
      | lets each fan send 5 requests a second | 5    |

  @revoked
  Scenario: A fan whose session is revoked keeps her map until she asks for more, then is told so and disconnected
    Given Alice has the live map of the "Rally of Tirana" open
    When the CMS revokes Alice's session
    And tracker-A reports the position 41.3292, 19.8212 at 2026-05-02 11:02:02
    Then Alice sees tracker-A move to 41.3292, 19.8212
    When Alice tries to open the live map of the "Rally of Tirana"
    Then Alice is told her session is no longer valid
    And Alice is disconnected because her session has ended
    And the service counts one refusal of a session that has ended

  @secrets
  Scenario: Session cookies never appear in the service's log
    Given Alice has the live map of the "Rally of Tirana" open
    And a fan with a made-up session cookie has been turned away
    And Carol has been turned away when connecting to the live map from the web site "evil.example.test"
    When the CMS revokes Alice's session
    And Alice tries to open the live map of the "Rally of Tirana"
    Then Alice is disconnected because her session has ended
    And no session cookie of this scenario appears in any service's log

  @subscription-limit
  Scenario: A fan may follow as many events at once as the service allows, and not one more
    Given the organisation "Albanian Rally Club" also runs the events "Rally of Durrës", "Rally of Vlorë" and "Rally of Shkodër"
    And Alice may watch every event of the "Albanian Rally Club"
    And a service that lets each fan follow at most 3 events at once (a test setting; the product allows 50)
    When Alice opens the live maps of the "Rally of Tirana", the "Rally of Durrës" and the "Rally of Vlorë" through that service
    Then Alice follows all 3 of them
    When Alice opens the live map of the "Rally of Shkodër"
    Then Alice is told she follows too many events at once
    When Alice stops following the "Rally of Vlorë"
    Then Alice can now open the live map of the "Rally of Shkodër"

  @usual-subscription-limit
  Scenario: Unless told otherwise, the service lets a fan follow 50 events at once, and not one more
    Given Alice may watch 51 events of the "Albanian Rally Club"
    When Alice opens the live maps of 50 of those events
    And Alice opens the live map of the last of those events
    Then Alice is told she follows too many events at once

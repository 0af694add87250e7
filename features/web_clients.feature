@web-clients
Feature: Our web site's pages get in, and learn why when they do not
  The live map runs in fans' browsers, which say which web site a page comes from and hide from the page why
  a connection was refused. The live channel lets our own web site in however its address was written in the
  configuration, turns away a page asking for something it does not speak before bothering the CMS, and
  tells a turned-away page whether to ask the fan to sign in or to try again later.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"

  @allowed-origin
  Scenario: A page of our web site gets in
    Given Alice may watch the "Rally of Tirana"
    When Alice's page on our web site opens the live channel
    Then Alice is let in
    And Alice can watch the "Rally of Tirana" live

  @origin-spelling
  Scenario: Our web site gets in however its address was written in the configuration
    Given Alice may watch the "Rally of Tirana"
    And a Processor W whose only allowed web site is written "https://Live.Example.com/"
    When Alice's browser opens the live channel of Processor W from the web site "https://live.example.com"
    Then Alice is let in
    And Alice can watch the "Rally of Tirana" live

  @subprotocol
  Scenario: A page asking for a sub-protocol is turned away before the CMS is asked
    Given Alice is signed in
    When Alice's page on our web site opens the live channel asking for the sub-protocol "live.v1"
    Then Alice is turned away because the live channel speaks no sub-protocol
    And the CMS was not asked about Alice

  @session-check
  Scenario Outline: A page that was turned away learns whether to ask for signing in or to try later
    Given <situation>
    When the page of our web site asks why Alice would be turned away
    Then the page learns <answer>

    Examples:
      | situation                                               | answer                                 |
      | Alice is signed in                                      | that Alice is signed in                |
      | Alice is not signed in                                  | that Alice must sign in                |
      | Alice's session was revoked by the CMS                  | that Alice must sign in                |
      | the CMS is down and answers every request with an error | that signing in is unavailable for now |

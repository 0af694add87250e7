@web-clients
Feature: Our web site's pages get in, and learn why when they do not
  The live map runs in fans' browsers, which say which web site a page comes from and hide from the page why
  a connection was refused. The live map lets our own web site in however its address was written in the
  service's settings, turns away a page asking for a language it does not speak before bothering the CMS, and
  tells a turned-away page whether to ask the fan to sign in or to try again later.

  Background:
    Given the organisation "Albanian Rally Club" runs the event "Rally of Tirana"

  @allowed-origin
  Scenario: A page of our web site gets in
    Given Alice may watch the "Rally of Tirana"
    When Alice's page on our web site connects to the live map
    Then Alice is let in
    And Alice can watch the "Rally of Tirana" live
    And the live map sends Alice's page its messages uncompressed, though the page offered compression

  @origin-spelling
  Scenario Outline: Our web site gets in however its address was written in the configuration
    Given Alice may watch the "Rally of Tirana"
    And a service whose only allowed web site is written "<written>"
    When Alice's browser connects to that service from the web site "<site>"
    Then Alice is let in
    And Alice can watch the "Rally of Tirana" live

    Examples:
      | written                       | site                   |
      | https://Live.Example.com/     | live.example.com       |
      | https://Live.Example.com:443/ | live.example.com       |
      | https://bücher.example        | xn--bcher-kva.example  |

  @any-site
  Scenario: A service told to let every web site in lets any page in but one without a site, and warns once
    Given Alice may watch the "Rally of Tirana"
    And a service that lets pages of every web site in
    When Alice's browser connects to that service from the web site "anywhere.example"
    Then Alice is let in
    And a page without a web site of its own is turned away by that service
    And that service warned once, when it started, that every web site may use a fan's session

  @no-allowed-sites
  Scenario: A service told of no web site turns every page away, but lets in an app that is no web page
    Given Alice may watch the "Rally of Tirana"
    And a service that was told of no web site
    When Alice's browser connects to that service from the web site "live.example.test"
    Then Alice is turned away as coming from a foreign web site
    And Alice's app, which is no web page, is let in by that service


  @subprotocol
  Scenario: A page asking for a language the live map does not speak is turned away before the CMS is asked
    Given Alice is signed in
    When Alice's page on our web site connects to the live map asking it to speak "live.v1"
    Then Alice is turned away because the live map speaks no other language
    And the CMS was not asked about Alice

  @session-check
  Scenario Outline: A page that was turned away learns whether to ask for signing in or to try later
    Given <situation>
    When <page> asks why Alice would be turned away
    Then the page learns <answer>
    And no cache may keep that answer, nor give it to a page of another web site
    And the CMS was asked about Alice at most once
    And the service counted it as <counted>
    And Alice's connection to the live map, made from that page, gives the same reason and is counted the same way

    Examples:
      | situation                                               | page                       | answer                                 | counted                         |
      | Alice is signed in                                      | the page of our web site   | that Alice is signed in                | no refusal                      |
      | Alice is not signed in                                  | the page of our web site   | that Alice must sign in                | a fan who is not signed in  |
      | Alice's session was revoked by the CMS                  | the page of our web site   | that Alice must sign in                | a session the CMS does not know |
      | the CMS is down and answers every request with an error | the page of our web site   | that signing in is unavailable for now | a CMS outage                    |
      | Alice is signed in                                      | a page of another web site | nothing, as the answer is not for it   | a foreign web site              |

  @session-busy
  Scenario: A page turned away while the CMS is busy learns when to try again
    Given Alice is signed in
    And the CMS is limiting requests for a moment
    When the page of our web site asks why Alice would be turned away
    Then the page learns that signing in is unavailable for now, and may read when to try again
    And the service counted it as the CMS limiting requests
    And Alice's connection to the live map, made from that page, gives the same reason and is counted the same way

  @other-requests
  Scenario Outline: A request for something the service does not offer is refused plainly
    When a page asks the service <request>
    Then the page is told <answer>

    Examples:
      | request                        | answer                 |
      | for a page that does not exist | there is nothing there |
      | to post to the sign-in check   | it may only ask there  |
      | to delete the sign-in check    | it may only ask there  |

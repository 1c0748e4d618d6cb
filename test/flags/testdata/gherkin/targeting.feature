@targeting
Feature: Targeting rules over OFREP

  Background:
    Given an evaluator

  Scenario Outline: The targeting key
    Given a String-flag with key "support-tier" and a fallback value "none"
    And a context containing a targeting key with value "<account>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "<reason>"

    Examples:
      | account | value   | reason          |
      | acme-1  | premium | TARGETING_MATCH |
      | acme-2  | premium | TARGETING_MATCH |
      | globex  | basic   | DEFAULT         |

  Scenario Outline: Shared rules through $ref, however the $ref is spaced
    Given a String-flag with key "<key>" and a fallback value "none"
    And a context containing a key "email", with type "String" and with value "<email>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "TARGETING_MATCH"

    Examples:
      | key                | email             | value |
      | staff-tools        | ana@umbra.example | on    |
      | staff-tools        | bo@example.org    | off   |
      | staff-tools-spaced | ana@umbra.example | on    |
      | staff-tools-spaced | bo@example.org    | off   |

  Scenario Outline: Attributes of several types in one rule
    Given a String-flag with key "plan-gate" and a fallback value "none"
    And a context containing a key "plan", with type "String" and with value "<plan>"
    And a context containing a key "seats", with type "Integer" and with value "<seats>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples:
      | plan | seats | value  |
      | pro  | 5     | open   |
      | pro  | 2     | closed |
      | free | 50    | closed |

  Scenario Outline: A rule that returns null serves the default variant
    Given a gateway serving the flag file "plain.json"
    And a Boolean-flag with key "new-nav" and a fallback value "false"
    And a context containing a key "country", with type "String" and with value "<country>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "<reason>"

    Examples:
      | country | value | reason          |
      | NZ      | true  | TARGETING_MATCH |
      | DE      | false | DEFAULT         |

  @string
  Scenario Outline: starts_with and ends_with
    Given a String-flag with key "region" and a fallback value "none"
    And a context containing a key "host", with type "String" and with value "<host>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples:
      | host         | value |
      | eu-west.shop | eu    |
      | shop.us      | us    |
      | eu-2.us      | eu    |
      | asia.shop    | other |

  @string @operator-errors
  Scenario Outline: starts_with on a number and ends_with with one argument are null: the default variant
    Given a String-flag with key "<key>" and a fallback value "code-default"
    And a context containing a key "build", with type "<type>" and with value "<build>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "<reason>"

    Examples:
      | key                | type    | build | value    | reason          |
      | starts-with-number | Integer | 2017  | fallback | DEFAULT         |
      | starts-with-number | String  | 2017  | yes      | TARGETING_MATCH |
      | ends-with-one-arg  | String  | 2017  | fallback | DEFAULT         |

  @string @schema-warning
  Scenario: ends_with with a number to compare with loads (a schema warning) and never matches
    Given a String-flag with key "ends-with-number-target" and a fallback value "code-default"
    And a context containing a key "build", with type "String" and with value "2017"
    When the flag was evaluated with details
    Then the resolved details value should be "no-match"
    And the flag file should have loaded with a warning containing "flag \"ends-with-number-target\" at /targeting/if/0/ends_with/1: got number, want string (flagd schema)"

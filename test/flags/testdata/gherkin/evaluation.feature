Feature: Flag values of every type over OFREP

  # umbra's own scenarios, in the step vocabulary of flagd's test bed so
  # the same step definitions run both. Flags: flags/flags.json unless a
  # scenario names another file. Each evaluation goes through the
  # OpenFeature Go SDK and its OFREP provider to a running gateway.

  Background:
    Given an evaluator

  Scenario Outline: Static values of every type
    Given a <type>-flag with key "<key>" and a fallback value "<fallback>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "STATIC"
    And the variant should be "<variant>"

    Examples:
      | type    | key             | fallback | value                                                      | variant |
      | Boolean | banner-enabled  | false    | true                                                       | shown   |
      | String  | greeting        | hello    | hey                                                        | casual  |
      | Integer | page-size       | 50       | 200                                                        | large   |
      | Float   | sample-rate     | 0.5      | 0.25                                                       | high    |
      | Object  | checkout-layout | {}       | {\"columns\": 1, \"express\": true, \"label\": \"Buy now\"} | compact |

  Scenario Outline: Zero values are values, not absences
    Given a <type>-flag with key "<key>" and a fallback value "<fallback>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "STATIC"

    Examples:
      | type    | key          | fallback    | value |
      | Boolean | kill-switch  | true        | false |
      | String  | motto        | keep going  |       |
      | Integer | retries      | 5           | 0     |
      | Float   | discount     | 0.3         | 0.0   |
      | Object  | extra-config | {\"b\": 2}  | {}    |

  @targeting
  Scenario Outline: A rule choosing a zero value, and the default when it does not match
    Given a <type>-flag with key "<key>" and a fallback value "<fallback>"
    And a context containing a key "email", with type "String" and with value "<email>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "<reason>"

    Examples:
      | type    | key           | fallback | email             | value | reason          |
      | Boolean | staff-opt-out | true     | ana@umbra.example | false | TARGETING_MATCH |
      | Boolean | staff-opt-out | false    | bo@example.org    | true  | DEFAULT         |
      | Integer | staff-quota   | 3        | ana@umbra.example | 0     | TARGETING_MATCH |
      | Integer | staff-quota   | 3        | bo@example.org    | 10    | DEFAULT         |

  @disabled
  Scenario Outline: A disabled flag answers DISABLED and the caller keeps its fallback
    Given a <type>-flag with key "<key>" and a fallback value "<fallback>"
    When the flag was evaluated with details
    Then the resolved details value should be "<fallback>"
    And the reason should be "DISABLED"
    And the OFREP answer should have no value

    Examples:
      | type    | key           | fallback |
      | Boolean | legacy-search | false    |
      | String  | legacy-theme  | plain    |
      | Integer | legacy-limit  | 7        |

  @no-default-variant
  Scenario Outline: Without a default variant the caller's code default applies
    Given a <type>-flag with key "<key>" and a fallback value "<fallback>"
    And a context containing a targeting key with value "<account>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "<reason>"

    Examples:
      | type    | key         | account | fallback | value | reason          |
      | Boolean | pilot       | acct-1  | true     | true  | DEFAULT         |
      | Boolean | pilot       | acct-1  | false    | false | DEFAULT         |
      | Integer | cohort-size | acct-1  | 100      | 100   | DEFAULT         |
      | String  | pilot-title | acct-17 | Guest    | Pilot | TARGETING_MATCH |
      | String  | pilot-title | acct-99 | Guest    | Guest | DEFAULT         |

  @no-default-variant
  Scenario: The code default is sent as an answer without a value
    Given a String-flag with key "pilot-title" and a fallback value "Guest"
    And a context containing a targeting key with value "acct-99"
    When the flag was evaluated with details
    Then the OFREP answer should have status 200
    And the OFREP answer should have no value
    And the reason should be "DEFAULT"

  @metadata
  Scenario: Flag metadata over the flag set's metadata
    Given a gateway serving the flag file "metadata.json"
    And a Boolean-flag with key "one-click" and a fallback value "false"
    When the flag was evaluated with details
    Then the resolved details value should be "true"
    And the resolved metadata should contain
      | key      | metadata_type | value    |
      | team     | String        | payments |
      | owner    | String        | ana      |
      | ticket   | Integer       | 4711     |
      | tier     | Integer       | 2        |
      | weight   | Float         | 0.5      |
      | critical | Boolean       | true     |

  @metadata
  Scenario: A flag without metadata of its own carries the flag set's
    Given a gateway serving the flag file "metadata.json"
    And a Boolean-flag with key "express-lane" and a fallback value "true"
    When the flag was evaluated with details
    Then the resolved details value should be "false"
    And the resolved metadata should contain
      | key      | metadata_type | value    |
      | team     | String        | checkout |
      | tier     | Integer       | 2        |
      | critical | Boolean       | true     |

  @metadata
  Scenario Outline: No metadata anywhere, none in the answer
    Given a gateway serving the flag file "plain.json"
    And a <type>-flag with key "<key>" and a fallback value "<fallback>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the resolved metadata is empty

    Examples:
      | type    | key       | fallback | value    |
      | Boolean | new-nav   | true     | false    |
      | String  | nav-label | Next     | Continue |

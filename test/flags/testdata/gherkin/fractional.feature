@fractional
Feature: Fractional splits over OFREP

  # Expected buckets: murmur3 (x86, 32 bits, seed 0) of the bucketing
  # value, times the total weight, shifted right 32 bits (flagd v0.16),
  # as sdk_test.go computes them without flagd's code.

  Background:
    Given an evaluator

  Scenario Outline: A bucketing expression of flag key and a nested attribute
    Given a String-flag with key "ab-test" and a fallback value "none"
    And a context containing a nested property with outer key "account" and inner key "id", with value "<id>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "TARGETING_MATCH"

    Examples:
      | id     | value |
      | acct-2 | a     |
      | acct-8 | a     |
      | acct-4 | b     |
      | acct-3 | c     |

  Scenario Outline: The shorthand buckets on flag key and targeting key, weight 1 when left out
    Given a String-flag with key "coin-flip" and a fallback value "none"
    And a context containing a targeting key with value "<key>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples:
      | key               | value |
      | ana@umbra.example | tails |
      | cy@example.org    | heads |

  Scenario: Without a targeting key the shorthand serves the default variant
    Given a String-flag with key "coin-flip" and a fallback value "none"
    When the flag was evaluated with details
    Then the resolved details value should be "edge"
    And the reason should be "DEFAULT"

  Scenario Outline: Two flags with one seed put a caller in the same bucket
    Given a String-flag with key "<key>" and a fallback value "none"
    And a context containing a nested property with outer key "account" and inner key "id", with value "<id>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples:
      | key          | id     | value |
      | seeded-color | acct-1 | green |
      | seeded-size  | acct-1 | L     |
      | seeded-color | acct-2 | red   |
      | seeded-size  | acct-2 | S     |

  @schema-warning
  Scenario: A single bucket takes everyone
    Given a String-flag with key "single-bucket" and a fallback value "none"
    And a context containing a targeting key with value "anyone"
    When the flag was evaluated with details
    Then the resolved details value should be "only"
    And the flag file should have loaded with a warning containing "flag \"single-bucket\" at /targeting/fractional/0"

  @fractional-nested @schema-warning
  Scenario Outline: A rule as a bucket's variant
    Given a String-flag with key "nested-plan" and a fallback value "none"
    And a context containing a targeting key with value "<key>"
    And a context containing a key "plan", with type "String" and with value "<plan>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the flag file should have loaded with a warning containing "flag \"nested-plan\" at /targeting/fractional/1/0: got object, want string (flagd schema)"

    Examples:
      | key    | plan | value |
      | user-3 | pro  | pro   |
      | user-3 | free | free  |
      | user-1 | pro  | free  |

  @fractional-nested
  Scenario Outline: A context attribute as a bucket's variant; one naming no variant is an error
    Given a String-flag with key "nested-color" and a fallback value "code-default"
    And a context containing a targeting key with value "<key>"
    And a context containing a key "color", with type "String" and with value "<color>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the error-code should be "<error>"

    Examples:
      | key    | color  | value        | error   |
      | user-3 | green  | green        |         |
      | user-3 | red    | red          |         |
      | user-1 | red    | blue         |         |
      | user-3 | yellow | code-default | GENERAL |
      | user-3 |        | code-default | GENERAL |

  @fractional-nested
  Scenario Outline: A rule as a bucket's weight
    Given a String-flag with key "nested-weight" and a fallback value "none"
    And a context containing a targeting key with value "<key>"
    And a context containing a key "plan", with type "String" and with value "<plan>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples:
      | key    | plan | value |
      | user-3 | pro  | red   |
      | user-1 | pro  | blue  |
      | user-3 | free | blue  |
      | user-1 | free | blue  |

  @fractional-nested @schema-warning
  Scenario Outline: A split of booleans as an if condition
    Given a String-flag with key "<key>" and a fallback value "none"
    And a context containing a targeting key with value "anyone"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the flag file should have loaded with a warning containing "flag \"<key>\" at /targeting/if/0/fractional/1/0: got boolean, want string (flagd schema)"

    Examples:
      | key                        | value |
      | fractional-condition       | yes   |
      | fractional-condition-false | no    |

  @operator-errors
  Scenario Outline: Weights that leave nobody a bucket, and a missing bucketing value, serve the default variant
    Given a String-flag with key "<key>" and a fallback value "code-default"
    And a context containing a targeting key with value "anyone"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "<reason>"

    Examples:
      | key             | value    | reason          |
      | zero-weights    | fallback | DEFAULT         |
      | negative-weight | y        | TARGETING_MATCH |

  @operator-errors
  Scenario: A bucketing value that is missing, and no targeting key, serve the default variant
    Given a String-flag with key "missing-bucket-key" and a fallback value "code-default"
    When the flag was evaluated with details
    Then the resolved details value should be "fallback"
    And the reason should be "DEFAULT"

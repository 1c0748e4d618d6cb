@semver
Feature: sem_ver over OFREP

  Background:
    Given an evaluator

  Scenario Outline: Equal, newer, older
    Given a String-flag with key "app-version" and a fallback value "code-default"
    And a context containing a key "version", with type "String" and with value "<version>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples:
      | version    | value |
      | 3.2.0      | equal |
      | 3.10.1     | newer |
      | 2.9.9      | older |
      | 3.2.0-rc.1 | older |
      | 3.2        | equal |
      | 3.2.0.1    | none  |

  Scenario Outline: Same minor (~) and same major (^)
    Given a String-flag with key "app-line" and a fallback value "code-default"
    And a context containing a key "version", with type "String" and with value "<version>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples:
      | version | value |
      | 5.1.9   | patch |
      | 5.4.0   | minor |
      | 6.0.0   | none  |

  @schema-warning @semver-v-prefix
  Scenario Outline: A v prefix, on either side, in either case
    Given a String-flag with key "semver-v-prefix" and a fallback value "code-default"
    And a context containing a key "version", with type "String" and with value "<version>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the flag file should have loaded with a warning containing "flag \"semver-v-prefix\" at /targeting/if/0/sem_ver/2: \"v2.4.0\" does not match the schema's pattern (flagd schema)"

    Examples:
      | version | value    |
      | 2.4.0   | match    |
      | v2.4.0  | match    |
      | V2.4.0  | match    |
      | 2.4.1   | no-match |

  @schema-warning @semver-partial-version
  Scenario Outline: Partial versions, and numbers as versions
    Given a String-flag with key "semver-partial" and a fallback value "code-default"
    And a context containing a key "version", with type "<type>" and with value "<version>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the flag file should have loaded with a warning containing "flag \"semver-partial\" at /targeting/if/0/sem_ver/2: \"4\" does not match the schema's pattern"

    Examples:
      | type    | version | value    |
      | String  | 4.9.1   | match    |
      | String  | 4.0     | match    |
      | String  | 4       | match    |
      | Integer | 4       | match    |
      | Float   | 4.2     | match    |
      | String  | 5.0.0   | no-match |

  @schema-warning @semver-numeric-context
  Scenario Outline: Numbers in the context are compared as versions
    Given a String-flag with key "semver-numeric" and a fallback value "code-default"
    And a context containing a key "version", with type "<type>" and with value "<version>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples:
      | type    | version | value    |
      | Float   | 2.5     | match    |
      | Float   | 2.4     | no-match |
      | Integer | 3       | match    |
      | Integer | 2       | no-match |
      | String  | 2.10    | match    |

  @semver-build-metadata
  Scenario Outline: Build metadata does not count
    Given a String-flag with key "semver-build" and a fallback value "code-default"
    And a context containing a key "version", with type "String" and with value "<version>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"

    Examples:
      | version     | value    |
      | 1.4.0       | match    |
      | 1.4.0+other | match    |
      | 1.4.1       | no-match |

  Scenario Outline: A bare sem_ver names the variant "true" or "false"
    Given a String-flag with key "semver-bare" and a fallback value "code-default"
    And a context containing a key "version", with type "String" and with value "<version>"
    When the flag was evaluated with details
    Then the resolved details value should be "<value>"
    And the reason should be "<reason>"

    Examples:
      | version | value    | reason          |
      | 1.2.0   | yes      | TARGETING_MATCH |
      | 0.9.0   | no       | TARGETING_MATCH |
      | banana  | fallback | DEFAULT         |

  @operator-errors
  Scenario Outline: An unknown operator or two arguments are null: the default variant
    Given a String-flag with key "<key>" and a fallback value "code-default"
    And a context containing a key "version", with type "String" and with value "1.2.0"
    When the flag was evaluated with details
    Then the resolved details value should be "fallback"
    And the reason should be "DEFAULT"

    Examples:
      | key                 |
      | semver-bad-operator |
      | semver-two-args     |

Feature: Evaluation errors over OFREP, as flagd answers them

  # flagd loads these flags and logs a warning; evaluating them fails at
  # request time with flagd's OFREP answer (status and errorCode from
  # flagd/core's service/ofrep), and the SDK serves the caller's fallback.

  Background:
    Given an evaluator

  Scenario: An unknown flag is 404 FLAG_NOT_FOUND
    Given a String-flag with key "no-such-flag" and a fallback value "code-default"
    When the flag was evaluated with details
    Then the resolved details value should be "code-default"
    And the error-code should be "FLAG_NOT_FOUND"
    And the reason should be "ERROR"
    And the OFREP answer should have status 404
    And the OFREP answer should have errorDetails "flag `no-such-flag` does not exist"

  Scenario Outline: A value of another type than asked for is TYPE_MISMATCH
    Given a <type>-flag with key "<key>" and a fallback value "<fallback>"
    When the flag was evaluated with details
    Then the resolved details value should be "<fallback>"
    And the error-code should be "TYPE_MISMATCH"
    And the OFREP answer should have status 200

    Examples:
      | type    | key                | fallback |
      | Integer | greeting           | 7        |
      | Integer | numbers-as-strings | 7        |
      | Boolean | page-size          | true     |
      | String  | checkout-layout    | plain    |

  @schema-warning
  Scenario Outline: A rule jsonlogic cannot apply is 400 PARSE_ERROR
    Given a String-flag with key "<key>" and a fallback value "code-default"
    And a context containing a key "email", with type "String" and with value "ana@umbra.example"
    When the flag was evaluated with details
    Then the resolved details value should be "code-default"
    And the error-code should be "PARSE_ERROR"
    And the OFREP answer should have status 400
    And the OFREP answer should have errorDetails "error parsing the flag `<key>`"
    And the flag file should have loaded with a warning containing "<warning>"

    Examples:
      | key            | warning                                                                                                  |
      | typo-operator  | flag \"typo-operator\": targeting: unknown operator \"end_with\": evaluations answer PARSE_ERROR          |
      | lost-evaluator | flag \"lost-evaluator\": targeting: $ref \"is_admin\" names no evaluator in \"$evaluators\": evaluations |

  Scenario: A rule naming no variant is 400 GENERAL; where it names one it evaluates
    Given a String-flag with key "unknown-variant" and a fallback value "code-default"
    And a context containing a key "email", with type "String" and with value "ana@umbra.example"
    When the flag was evaluated with details
    Then the resolved details value should be "code-default"
    And the error-code should be "GENERAL"
    And the OFREP answer should have status 400
    And the OFREP answer should have errorDetails "error processing the flag for evaluation"

  Scenario: The same flag for a caller its rule sends to a real variant
    Given a String-flag with key "unknown-variant" and a fallback value "code-default"
    And a context containing a key "email", with type "String" and with value "bo@example.org"
    When the flag was evaluated with details
    Then the resolved details value should be "off"
    And the reason should be "TARGETING_MATCH"

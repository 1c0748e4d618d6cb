Feature: Flag files load as flagd loads them

  # What flagd refuses to load, umbra refuses: the gateway does not start
  # on it (and a running gateway keeps its flags). What flagd loads with a
  # schema warning, umbra loads, lists under "warnings" in
  # GET /api/v1/flags and logs.

  Scenario: A clean file loads without warnings
    Given a gateway serving the flag file "plain.json"
    Then the flag file should have loaded without warnings

  @schema-warning
  Scenario: Schema findings are warnings, one per flag, positioned
    Given an evaluator
    Then the flag file should have loaded with a warning containing "flags.json:60:5: flag \"single-bucket\" at /targeting/fractional/0: got array, want object (flagd schema)"
    And the flag file should have loaded with a warning containing "flags.json:86:5: flag \"semver-v-prefix\""
    And the flag file should have loaded with a warning containing "flags.json:66:5: flag \"nested-weight\" at /targeting/fractional/1/1: got object, want number (flagd schema)"

  Scenario: A warned flag set still serves its flags
    Given a gateway serving the flag file "metadata.json"
    And a Boolean-flag with key "broken-lane" and a fallback value "true"
    When the flag was evaluated with details
    Then the resolved details value should be "true"
    And the error-code should be "PARSE_ERROR"
    And the flag file should have loaded with a warning containing "flags.json:7:5: flag \"broken-lane\": targeting: $ref \"nowhere\" names no evaluator"

  Scenario Outline: What flagd refuses is refused, with the place and the reason
    Then loading the flag file "<file>" is refused with "<reason>"

    Examples:
      | file                       | reason                                                                      |
      | default-names-nothing.json | default-names-nothing.json:1:12: flag \"checkout\": defaultVariant \"v3\" is not one of its variants |
      | state-is-a-number.json     | state-is-a-number.json:1:12: flag \"checkout\": state must be \"ENABLED\" or \"DISABLED\", got a number |
      | variants-are-a-list.json   | flag \"checkout\": \"variants\" must be an object of variant name to value, got an array             |
      | truncated.json             | truncated.json:2:1: invalid JSON: unexpected EOF                                                     |

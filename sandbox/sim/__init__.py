"""What both platform simulators share: rate limiting, fault injection, waiting, control routes
and serving HTTP. Each simulator adds the platform's own rules on top (`sandbox.telegram`,
`sandbox.slack`)."""

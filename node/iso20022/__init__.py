"""ISO 20022 messages: pacs.008 in (validated, mapped to the signed instruction), pacs.002 out.

The EIP-712 signature stays the authority; the message is the envelope. Schemas are vendored in
``xsd/`` (see ``xsd/SOURCES.md``).
"""

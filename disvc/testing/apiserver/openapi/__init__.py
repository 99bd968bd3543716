"""OpenAPI documents of the loopback API server, for ``kubectl``.

- :mod:`.schemas`: the hand-written schemas of the built-in kinds and ObjectMeta;
- :mod:`.documents`: the v3 documents per group-version and the v2 document,
  built from the registry (CRD schemas as the API server publishes them);
- :mod:`.protobuf`: the v2 document in the protobuf encoding kubectl downloads.
"""

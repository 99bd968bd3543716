"""The REST handlers: one module per verb family, as k8s.io/apiserver's ``endpoints/handlers``.

Each handler decodes what the request carries (body, patch, options, query),
asks the generic store (:mod:`disvc.testing.apiserver.store`) to read or
write, and encodes the answer. They know nothing of routing (the server's
job) nor of any particular type (its strategy's job).

- :mod:`.get`: get and list (with paging);
- :mod:`.write`: create (POST) and update (PUT);
- :mod:`.patch`: merge, JSON and strategic patches, and server-side apply;
- :mod:`.delete`: delete and deletecollection;
- :mod:`.scale`: the ``scale`` subresource;
- :mod:`.watch`: watch streams;
- :mod:`.request` and :mod:`.response`: what every handler reads and writes.
"""

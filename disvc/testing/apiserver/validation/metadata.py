"""Object metadata validation: names, labels, annotations, ownerReferences.

Every write, built-in or custom, passes these apimachinery rules
(``pkg/util/validation`` and ``ObjectMeta`` validation), worded as the API
server words them. The DNS name checks are shared with :mod:`builtin`.
"""

from __future__ import annotations

import re
from typing import Any, Final

from disvc.testing.apiserver.validation.causes import Cause, invalid, required, too_long

_DNS1123_LABEL: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN: Final = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL: Final = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE: Final = "(" + _QUALIFIED_NAME + ")?"

_DNS1123_LABEL_MSG: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{_DNS1123_LABEL}')"
)
_DNS1123_SUBDOMAIN_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{_DNS1123_SUBDOMAIN}')"
)
_DNS1035_LABEL_MSG: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    f"regex used for validation is '{_DNS1035_LABEL}')"
)
_QUALIFIED_NAME_MSG: Final = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
    f"regex used for validation is '{_QUALIFIED_NAME}')"
)
_LABEL_VALUE_MSG: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    f"regex used for validation is '{_LABEL_VALUE}')"
)
_TOTAL_ANNOTATION_BYTES: Final = 256 * 1024


def dns_label_errors(text: str) -> list[str]:
    errors = [] if len(text) <= 63 else ["must be no more than 63 characters"]
    if not re.fullmatch(_DNS1123_LABEL, text):
        errors.append(_DNS1123_LABEL_MSG)
    return errors


def dns_subdomain_errors(text: str) -> list[str]:
    errors = [] if len(text) <= 253 else ["must be no more than 253 characters"]
    if not re.fullmatch(_DNS1123_SUBDOMAIN, text):
        errors.append(_DNS1123_SUBDOMAIN_MSG)
    return errors


def dns1035_errors(text: str) -> list[str]:
    errors = [] if len(text) <= 63 else ["must be no more than 63 characters"]
    if not re.fullmatch(_DNS1035_LABEL, text):
        errors.append(_DNS1035_LABEL_MSG)
    return errors


def qualified_name_errors(text: str) -> list[str]:
    parts = text.split("/")
    if len(parts) > 2:
        return ["a qualified name " + _QUALIFIED_NAME_MSG.replace("name part ", "", 1)]
    errors: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + message for message in dns_subdomain_errors(prefix))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if name and not re.fullmatch(_QUALIFIED_NAME, name):
        errors.append(_QUALIFIED_NAME_MSG)
    return errors


def label_value_errors(text: str) -> list[str]:
    errors = [] if len(text) <= 63 else ["must be no more than 63 characters"]
    if not re.fullmatch(_LABEL_VALUE, text):
        errors.append(_LABEL_VALUE_MSG)
    return errors


def validate_labels(labels: Any, path: str) -> list[Cause]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [invalid(path, labels, "must be a map of string to string")]
    causes: list[Cause] = []
    for name, text in labels.items():
        causes.extend(invalid(path, name, message) for message in qualified_name_errors(str(name)))
        if not isinstance(text, str):
            causes.append(invalid(f"{path}[{name}]", text, "must be a string"))
            continue
        causes.extend(invalid(path, text, message) for message in label_value_errors(text))
    return causes


def _validate_annotations(annotations: Any, path: str) -> list[Cause]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [invalid(path, annotations, "must be a map of string to string")]
    causes: list[Cause] = []
    total = 0
    for name, text in annotations.items():
        causes.extend(invalid(path, name, message) for message in qualified_name_errors(str(name).lower()))
        total += len(str(name)) + len(str(text))
    if total > _TOTAL_ANNOTATION_BYTES:
        causes.append(too_long(path, _TOTAL_ANNOTATION_BYTES))
    return causes


def validate_metadata(obj: dict[str, Any], *, dns1035: bool) -> list[Cause]:
    """Name (DNS-1123 subdomain, or DNS-1035 label for Services), labels, annotations."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return [required("metadata")]
    causes: list[Cause] = []
    name = metadata.get("name")
    generate_name = metadata.get("generateName")
    if not name:
        if not generate_name:
            causes.append(required("metadata.name", "name or generateName is required"))
    else:
        name_errors = dns1035_errors(str(name)) if dns1035 else dns_subdomain_errors(str(name))
        causes.extend(invalid("metadata.name", name, message) for message in name_errors)
    if generate_name and not name:
        # generateName is checked with its random suffix's room left, as a prefix.
        trimmed = str(generate_name).rstrip("-") or "a"
        prefix_errors = dns1035_errors(trimmed) if dns1035 else dns_subdomain_errors(trimmed)
        causes.extend(invalid("metadata.generateName", generate_name, m) for m in prefix_errors)
    namespace = metadata.get("namespace")
    if namespace:
        causes.extend(invalid("metadata.namespace", namespace, m) for m in dns_label_errors(str(namespace)))
    causes.extend(validate_labels(metadata.get("labels"), "metadata.labels"))
    causes.extend(_validate_annotations(metadata.get("annotations"), "metadata.annotations"))
    causes.extend(_validate_owner_references(metadata.get("ownerReferences")))
    return causes


def _validate_owner_references(refs: Any) -> list[Cause]:
    """At most one owner may be the controller (apimachinery ValidateOwnerReferences)."""
    if not isinstance(refs, list):
        return []
    controllers = [r for r in refs if isinstance(r, dict) and r.get("controller") is True]
    if len(controllers) < 2:
        return []
    found = " and ".join(f"{r.get('kind')}/{r.get('name')}" for r in controllers)
    return [
        invalid(
            "metadata.ownerReferences",
            refs,
            f'Only one reference can have Controller set to true. Found "true" in references for {found}',
        )
    ]


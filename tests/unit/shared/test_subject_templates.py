"""Subject templates refuse CR/LF when saved, as every other header field does (issue 14,
defect 8)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.models.config import GlobalSettings
from shared.models.outgoing_config import TemplateSettings


@pytest.mark.parametrize(
    "template",
    ["{{ subject }}\r\nBcc: x@evil.example [Case#{{ case }}]", "{{ subject }} [Case#{{ case }}]\n"],
)
def test_the_outgoing_subject_template_refuses_cr_lf(template: str) -> None:
    with pytest.raises(ValidationError, match="CR and LF are refused"):
        GlobalSettings(outgoing_subject_template=template)


def test_technical_subject_templates_refuse_cr_lf_but_bodies_keep_lines() -> None:
    with pytest.raises(ValidationError, match="CR and LF are refused"):
        TemplateSettings(acknowledgement_subject="{{ subject }}\nBcc: x@evil.example")
    assert "\n" in TemplateSettings(acknowledgement_body="Hello\n{{ case }}\n").acknowledgement_body

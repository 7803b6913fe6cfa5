"""Runs every test_* function in tests/e2e/test_*.py (or the files named on
the command line), each with a fresh harness.Env, and prints one line per
test and the summary line "N passed, N failed"."""
import importlib.util
import inspect
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    files = sys.argv[1:] or sorted(
        os.path.join(here, f) for f in os.listdir(here)
        if f.startswith('test_') and f.endswith('.py'))
    only = os.environ.get('E2E_ONLY')
    passed = failed = 0
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for fname, fn in inspect.getmembers(mod, inspect.isfunction):
            if not fname.startswith('test_') or fn.__module__ != name:
                continue
            if only and only not in fname:
                continue
            env = harness.Env()
            t0 = time.monotonic()
            try:
                fn(env)
                passed += 1
                print('ok   %s.%s (%.2fs)' % (name, fname, time.monotonic() - t0), flush=True)
            except Exception:
                failed += 1
                print('FAIL %s.%s' % (name, fname), flush=True)
                print('     ' + traceback.format_exc().replace('\n', '\n     '), flush=True)
                for r in env.relays:
                    try:
                        print('     relay log (tail):\n       ' +
                              '\n       '.join(r.log().splitlines()[-15:]), flush=True)
                    except Exception:
                        pass
            finally:
                env.close()
    print('e2e: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

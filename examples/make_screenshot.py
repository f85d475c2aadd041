"""Make docs/run-page.png, README's picture of the viewer: run examples/quickstart.py in a
temporary folder, serve its store with the viewer on loopback, and photograph the run page in
headless Chromium (Debian's /usr/bin/chromium, driven by Playwright; `pip install -e ".[test]"`).

    python examples/make_screenshot.py [--output docs/run-page.png]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(HERE.parent / "docs" / "run-page.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from PIL import Image
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from runbridge import Workspace
    from runbridge.viewer.app import create_app

    with tempfile.TemporaryDirectory(prefix="runbridge-screenshot-") as tmp:
        subprocess.run([sys.executable, str(HERE / "quickstart.py")], cwd=tmp, check=True, capture_output=True,
                       env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"})
        ws = Workspace(backends=[f"sqlite:{Path(tmp) / '.runbridge' / 'runs.db'}"])
        run_id = ws.list_runs("quickstart")[0].run_id
        server = make_server("127.0.0.1", 0, create_app(ws), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1000, "height": 1460})
                page.goto(f"http://127.0.0.1:{server.server_port}/run?id={run_id}")
                page.wait_for_load_state("load")
                shot = page.screenshot(full_page=False)
                browser.close()
        finally:
            server.shutdown()
            thread.join(timeout=30)
    image = Image.open(io.BytesIO(shot)).convert("RGB").quantize(colors=64)
    image.save(args.output, optimize=True)
    print(f"wrote {args.output} ({Path(args.output).stat().st_size:,} bytes): the run page of {run_id}")


if __name__ == "__main__":
    main()

"""The built-in wallboard: static files (no build step, no CDN, no external fonts).

Serve `index.html` at `/` and this directory at `/static/` (the page loads `static/app.js` and
`static/style.css` relative to itself). The static files hold no data, so they need no token;
the page and the API do. See docs/wallboard.md.
"""

from pathlib import Path

STATIC_DIR: Path = Path(__file__).resolve().parent
INDEX_HTML: Path = STATIC_DIR / "index.html"

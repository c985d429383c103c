"""The legal team's web pages (HTML, CSS and JS, no build step), served by routes_ui."""

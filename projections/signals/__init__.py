"""AI-usage signals: every vocabulary crawlers read, from one decision per purpose.

- `vocabularies`: one versioned mapping table per vocabulary (data);
- `content`: the signals of one content in every form (headers, meta, JSON, bytes);
- `urls`: the URL template that maps (subject, content) to a page and back;
- `sitewide`: robots.txt, tdmrep.json and rsl.xml, streamed;
- `source`: the decisions for party `*` read in bulk from the read models;
- `published`: the as-served evidence (`SignalsPublished`), recorded on change;
- `drift`: comparing what pages serve with what the ledger says.
"""

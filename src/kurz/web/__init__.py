"""kurz's HTML pages: for now the three one-time links (first-run setup, invitations,
password resets), server-rendered, with no JavaScript and nothing from another origin."""

"""Keeping a home healthy and portable: `mem doctor` (doctor), `mem backup` / `mem restore`
(backup), `mem index push` / `pull` (migrating)."""

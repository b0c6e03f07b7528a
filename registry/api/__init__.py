"""The registry's own REST endpoints under /api/v4 (GitLab style; GitLab itself has GraphQL)."""

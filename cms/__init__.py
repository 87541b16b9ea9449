"""TerraBytes CMS: workshop content as JSON, every edit a git commit (see README.md)."""

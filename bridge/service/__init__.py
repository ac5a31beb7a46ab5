"""The register service: devices, cheques and the loyalty client, running all day."""

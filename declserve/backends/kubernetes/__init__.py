"""The Kubernetes backend: servings as Deployments, Services and ConfigMaps on a cluster."""

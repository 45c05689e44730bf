# Infrastructure targets (included by the Makefile). Synth needs no AWS credentials, Docker or network.
CDK_CLI_VERSION := 2.1148.1
CDK_DIR := $(TOOLS)/cdk
CDK := $(CDK_DIR)/node_modules/.bin/cdk
INFRA_ENVS := dev staging prod
ENV ?= dev
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: synth synth-% cdk-cli deploy diff destroy size-check test-infra

# Templates for every environment (cdk.out/<env>/), cdk-nag enforced; assets are not bundled here.
synth: env
	@for e in $(INFRA_ENVS); do \
	  echo "synth $$e"; DESK_ENV=$$e DESK_SKIP_BUNDLING=1 $(PY) infra/cdk_app.py || exit 1; \
	done

synth-%: env
	DESK_ENV=$* DESK_SKIP_BUNDLING=1 $(PY) infra/cdk_app.py

# The CDK CLI, pinned: npm's "latest" tag (3.0.0) rejects aws-cdk-lib 2.275.
$(CDK):
	npm install --silent --no-audit --no-fund --prefix $(CDK_DIR) aws-cdk@$(CDK_CLI_VERSION)

cdk-cli: $(CDK)
	$(CDK) --version

# make deploy ENV=staging   (bundles the layer and zip functions with pip; images are built by Docker)
deploy: env $(CDK)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) deploy --all -c env=$(ENV) --require-approval broadening

diff: env $(CDK)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) diff --all -c env=$(ENV)

destroy: env $(CDK)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) destroy --all -c env=$(ENV)

# Builds every zip asset and the slim desk layer (pip downloads: minutes); fails if a zip function +
# layers > 250 MB. Venue and quant functions are container images (infra/docker/Dockerfile), not sized here.
size-check: env
	$(PY) -m infra.packaging size-check --architecture $${ARCH:-x86_64}

test-infra: env
	$(PY) -m pytest -q tests/infra

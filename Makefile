# The VCOM failover pair. `make demo` runs the main job, `make test` the tests.
# Every target that measures (bench-*, fuzz, simulate, chaos) ends its output with one
# summary line `TARGET key=value ...` so runs can be compared.
SWIFT ?= swift
FUZZ_SECONDS ?= 60
SCHEDULES ?= 10000
# make test also runs this many simulated schedules (debug build, about 25 s).
TEST_SCHEDULES ?= 500
# ... and this many with a witness (its faults drawn too; about 20 s).
TEST_WITNESS_SCHEDULES ?= 100

.DEFAULT_GOAL := build
PREFIX ?= /usr/local
.PHONY: deps build server admin client-sim license-tool test simulate fuzz bench-wire bench-replication bench-failover bench-capacity chaos demo clean install package

deps:
	@Tools/scripts/ensure-deps.sh

build: deps
	$(SWIFT) build

server: deps
	$(SWIFT) build --product vcom-server

admin: deps
	$(SWIFT) build --product vcom-admin

client-sim: deps
	$(SWIFT) build --product vcom-client-sim

license-tool: deps
	$(SWIFT) build --product vcom-license

# One test at a time: the end-to-end tests run real servers whose sessions time out after
# 1.5 s of silence, and on two cores the suites in parallel (TLS in a debug build of BoringSSL
# beside a 200-client simulator) starved them: a session "lost" by the machine, not the
# product. Serial takes about 80 s instead of 35.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	.build/debug/failover-sim --schedules $(TEST_SCHEDULES)
	.build/debug/failover-sim --schedules $(TEST_WITNESS_SCHEDULES) --witness
	NETNS=0 ROUNDS=4 SEED=11 KEEP=0 Tools/chaos/chaos.sh
	Tools/doc-test/install-doc.py

# Seeded random fault schedules against the failover policy; SEED=n replays one with its trace,
# WITNESS=1 gives the pair an etcd witness and draws its faults too.
simulate: deps
	$(SWIFT) build -c release --product failover-sim
	.build/release/failover-sim $(if $(SEED),--seed $(SEED),--schedules $(SCHEDULES)) $(if $(filter 1,$(WITNESS)),--witness)

fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) Tools/Fuzz/run-fuzz.sh

bench-wire: deps
	@Tools/Benchmarks/run-wire.sh

# Replication over loopback TCP: lag at 1000 changes/s, catch-up of 100,000 changes.
bench-replication: deps
	@echo "bench-replication: building (release; the first build takes a few minutes)..."
	@cd Tools/Benchmarks && swift build --scratch-path ../../.build-bench -c release --product replication-bench 2>&1 | tail -1
	@.build-bench/release/replication-bench

# What a failover costs the clients: CLIENTS= (10000), TALKERS= (50), MODE=kill|silent|both,
# WITNESS=1 with an etcd witness.
bench-failover: deps
	@CLIENTS=$(or $(CLIENTS),10000) MODE=$(or $(MODE),kill) Tools/bench/bench-failover.sh

# Real processes under real faults, judged by chaos-check: ROUNDS= (20), SEED= replays,
# WITNESS=1 the rounds with an etcd witness on a host of its own.
chaos: deps
	@ROUNDS=$(or $(ROUNDS),20) $(if $(SEED),SEED=$(SEED)) WITNESS=$(or $(WITNESS),0) Tools/chaos/chaos.sh

# One serving server's cost per idle logged-in client: CLIENTS= (10000).
bench-capacity: deps
	@CLIENTS=$(or $(CLIENTS),10000) Tools/bench/bench-capacity.sh

# A primary, a secondary and simulated clients on loopback: a failover (CLIENTS=, TALKERS=).
demo: deps
	@Tools/demo/demo.sh

# Release builds of the four programs (the Swift runtime linked in), the systemd unit, the
# sample /etc/vcom/server.toml (kept if present) and the docs under PREFIX; as root with no
# DESTDIR, also the vcom user and its directories, as the package's postinst makes them.
install: deps
	@Tools/package/stamp.sh bash -c 'for p in vcom-server vcom-admin vcom-client-sim vcom-license; do $(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-package --product $$p 2>&1 | tail -1; done'
	Tools/package/install-tree.sh "$(DESTDIR)" "$(PREFIX)" .build-package/release
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then Tools/package/debian/postinst configure; fi

# vcom-failover_VERSION_ARCH.deb (dpkg-deb): apt install ./vcom-failover_*.deb.
package: deps
	@Tools/package/build-package.sh

clean:
	rm -rf .build .build-fuzz .build-bench .build-package run vcom-failover_*.deb

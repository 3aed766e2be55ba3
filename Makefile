# pg_connwatch/Makefile

MODULE_big = pg_connwatch
# One directory per layer; each depends only on the ones above it here.
OBJS = \
	$(WIN32RES) \
	src/pg_connwatch.o \
	src/observe/backend_state.o \
	src/observe/durations.o \
	src/observe/lock_graph.o \
	src/observe/connection_limits.o \
	src/observe/xmin_horizon.o \
	src/remember/shared_state.o \
	src/remember/refusals.o \
	src/remember/sessions.o \
	src/remember/hooks.o \
	src/remember/persistence.o \
	src/remember/history.o \
	src/datums.o \
	src/printable.o \
	src/act/signal.o \
	src/act/extension_tables.o \
	src/act/audit.o \
	src/act/units.o \
	src/act/engine.o \
	src/act/policies.o \
	src/sql/srf.o \
	src/sql/session_views.o \
	src/sql/limit_views.o \
	src/sql/horizon_view.o \
	src/sql/action_functions.o \
	src/sql/remember_views.o \
	src/sql/history_view.o \
	src/sql/text_functions.o \
	src/worker/worker.o

EXTENSION = pg_connwatch
# The scripts of the version in development, EXTVERSION (below): its install
# script and its upgrade script from the last release, built from sql_src/
# (one file per SQL object, in the order of sql_src/manifest.txt) by
# scripts/build_sql.sh.  Not committed (.gitignore).
PREVIOUS_VERSION = 1.1
DATA_built = pg_connwatch--$(EXTVERSION).sql pg_connwatch--$(PREVIOUS_VERSION)--$(EXTVERSION).sql
# The released install and upgrade scripts, committed and frozen, and the
# control file of version 1.0.
DATA = $(filter-out $(DATA_built),$(wildcard pg_connwatch--*.sql)) pg_connwatch--1.0.control
# the Prometheus query file and alerting rules (doc/metrics.md), as docs
DOCS = prometheus/pg_connwatch_queries.yaml prometheus/pg_connwatch_alerts.yml
PGFILEDESC = "pg_connwatch - connection and session watchdog"

# One file per topic; the lists follow the files on disk.  "make
# installcheck" runs the regress files and the isolation specs against the
# server at PGHOST/PGPORT, stock or not: a file that needs TCP on 127.0.0.1
# or max_prepared_transactions > 0 says "skipped:" where the server lacks
# it (doc/testing.md).  The TAP tests boot clusters of their own, need
# Perl's IPC::Run and take minutes: they run on request only,
# "make installcheck TAP_TESTS=1" (scripts/test_major.sh does).
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=output_iso
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

# The version the module reports (pg_get_loaded_modules(), 18 and later):
# the control file's default_version, the one place it is written.
EXTVERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(dir $(firstword $(MAKEFILE_LIST)))pg_connwatch.control)

PG_CPPFLAGS = -I$(srcdir)/src -DCW_MODULE_VERSION='"$(EXTVERSION)"' -Wall -Wextra -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare
# The test command and CI build with CONNWATCH_WERROR=1; a user's plain
# "make" on a newer compiler does not fail on a new warning.
ifeq ($(CONNWATCH_WERROR),1)
PG_CPPFLAGS += -Werror
endif

EXTRA_CLEAN = results output_iso $(DATA_built) $(addsuffix .tmp,$(DATA_built)) \
	$(EXTENSION)-$(DISTVERSION).zip

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Debian's postgresql-server-dev-13 ships no pg_isolation_regress: there
# "make installcheck" says the specs were skipped instead of failing.
ifeq ($(wildcard $(top_builddir)/src/test/isolation/pg_isolation_regress),)
pg_isolation_regress_installcheck = @echo "isolation specs skipped: this PostgreSQL's server-dev package has no pg_isolation_regress"; true
endif
# TAP tests asked for where Perl lacks IPC::Run: say so, and fail.
ifdef TAP_TESTS
ifeq ($(enable_tap_tests),yes)
ifneq ($(shell perl -MIPC::Run -e 1 2>/dev/null && echo yes),yes)
prove_installcheck = @echo "the TAP tests need Perl's IPC::Run (Debian: libipc-run-perl)"; false
endif
endif
endif

# PGXS knows nothing of our headers: rebuild every object when one changes.
$(OBJS): $(wildcard $(srcdir)/src/*.h $(srcdir)/src/*/*.h)

# The release version (PGXN, Debian): the extension's version as three
# numbers, 1.1 -> 1.1.0.  META.json and debian/changelog carry it too;
# scripts/test_release.sh checks that they agree.
DISTVERSION := $(if $(word 3,$(subst ., ,$(EXTVERSION))),$(EXTVERSION),$(EXTVERSION).0)

# make dist: the PGXN release, pg_connwatch-$(DISTVERSION).zip, made by
# git archive from the last commit (uncommitted changes are not in it),
# with the install scripts the build generates added to it.
dist: $(DATA_built)
	git -C $(srcdir) archive --format=zip --prefix=$(EXTENSION)-$(DISTVERSION)/ \
		$(foreach f,$(DATA_built),--add-file=$(f)) \
		-o $(CURDIR)/$(EXTENSION)-$(DISTVERSION).zip HEAD
.PHONY: dist

# The scripts of the version in development (DATA_built), rebuilt whenever a
# source, the manifest, the builder or the version changes.
SQL_SOURCES = $(srcdir)/sql_src/manifest.txt $(srcdir)/scripts/build_sql.sh \
	$(srcdir)/scripts/metrics_from_yaml.awk $(srcdir)/prometheus/pg_connwatch_queries.yaml \
	$(srcdir)/pg_connwatch.control $(wildcard $(srcdir)/sql_src/*/*.sql $(srcdir)/sql_src/*/*/*.sql)

pg_connwatch--$(EXTVERSION).sql: $(SQL_SOURCES)
	$(SHELL) $(srcdir)/scripts/build_sql.sh install $(EXTVERSION) >$@.tmp
	mv $@.tmp $@

pg_connwatch--$(PREVIOUS_VERSION)--$(EXTVERSION).sql: $(SQL_SOURCES)
	$(SHELL) $(srcdir)/scripts/build_sql.sh upgrade $(PREVIOUS_VERSION) $(EXTVERSION) >$@.tmp
	mv $@.tmp $@

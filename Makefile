# pg_connwatch/Makefile

MODULE_big = pg_connwatch
OBJS = \
	$(WIN32RES) \
	src/pg_connwatch.o \
	src/backend_state.o \
	src/lock_graph.o \
	src/session_views.o \
	src/connection_limits.o \
	src/xmin_horizon.o \
	src/termination.o \
	src/audit.o \
	src/rules.o \
	src/extension_tables.o

EXTENSION = pg_connwatch
# every install and upgrade script, and the control file of version 1.0
DATA = $(wildcard pg_connwatch--*.sql) pg_connwatch--1.0.control
PGFILEDESC = "pg_connwatch - connection and session watchdog"

# One file per topic; the lists follow the files on disk.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=output_iso
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare
# The test command and CI build with CONNWATCH_WERROR=1; a user's plain
# "make" on a newer compiler does not fail on a new warning.
ifeq ($(CONNWATCH_WERROR),1)
PG_CPPFLAGS += -Werror
endif

EXTRA_CLEAN = results output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS knows nothing of our headers: rebuild every object when one changes.
$(OBJS): $(wildcard $(srcdir)/src/*.h)

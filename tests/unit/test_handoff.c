// SPDX-License-Identifier: MIT
/* What an agent does with the pins it finds (agent/kernel/handoff.h): adopt, upgrade, resume or refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "handoff.h"

#define OURS 4
#define OLD 3
#define THIRD 7

static enum tg_handoff_plan plan(uint32_t top, bool handoff, uint32_t retiring)
{
	struct tg_pin_state st = { .top_layout = top, .top_has_pins = top != 0,
				   .has_handoff = handoff, .retiring_layout = retiring };

	return handoff_plan(&st, OURS);
}

static void test_fresh_and_restart(void **state)
{
	assert_int_equal(plan(0, false, 0), TG_PLAN_FRESH);
	assert_int_equal(plan(0, true, 0), TG_PLAN_FRESH);	/* handoff left by an uninstalled agent */
	assert_int_equal(plan(OURS, true, 0), TG_PLAN_ADOPT);
}

static void test_other_layout_upgrades_only_with_handoff(void **state)
{
	assert_int_equal(plan(OLD, true, 0), TG_PLAN_UPGRADE);
	assert_int_equal(plan(THIRD, true, 0), TG_PLAN_UPGRADE);	/* downgrades too */
	/* a release before the handoff: its programs would never stop tracking */
	assert_int_equal(plan(OLD, false, 0), TG_PLAN_REFUSE_OLD);
}

static void test_crash_mid_upgrade_resumes(void **state)
{
	/* died after moving the old generation aside, before or while pinning ours */
	assert_int_equal(plan(0, true, OLD), TG_PLAN_RESUME);
	/* died after switching, while the old one drained */
	assert_int_equal(plan(OURS, true, OLD), TG_PLAN_RESUME);
}

static void test_someone_elses_upgrade_is_refused(void **state)
{
	/* an upgrade OLD → THIRD is unfinished: only THIRD's agent may finish it */
	assert_int_equal(plan(THIRD, true, OLD), TG_PLAN_REFUSE_BUSY);
	/* the old agent started again over an upgrade away from it */
	assert_int_equal(plan(0, true, OURS), TG_PLAN_REFUSE_BUSY);
	assert_int_equal(plan(THIRD, true, OURS), TG_PLAN_REFUSE_BUSY);
}

static void test_shared_pins_are_never_moved(void **state)
{
	assert_true(handoff_is_shared_pin("handoff"));
	assert_true(handoff_is_shared_pin("owner"));
	assert_true(handoff_is_shared_pin("dns"));
	assert_true(handoff_is_shared_pin("retiring"));
	assert_true(handoff_is_shared_pin("retiring_tmp"));
	assert_true(handoff_is_shared_pin("retired"));
	assert_false(handoff_is_shared_pin("layout"));
	assert_false(handoff_is_shared_pin("links"));
	assert_false(handoff_is_shared_pin("census"));
	assert_false(handoff_is_shared_pin("tg_flows"));
	assert_false(handoff_is_shared_pin("handoff2"));
}

static void test_drain_rule(void **state)
{
	/* with a census: exactly when no old flow needs the old programs */
	assert_false(handoff_drain_done(true, 1, 0));
	assert_false(handoff_drain_done(true, 1, 100000));
	assert_true(handoff_drain_done(true, 0, 1));
	/* without one: a fixed bound */
	assert_false(handoff_drain_done(false, 0, TG_HANDOFF_BLIND_DRAIN_S - 1));
	assert_true(handoff_drain_done(false, 0, TG_HANDOFF_BLIND_DRAIN_S));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_and_restart),
		cmocka_unit_test(test_other_layout_upgrades_only_with_handoff),
		cmocka_unit_test(test_crash_mid_upgrade_resumes),
		cmocka_unit_test(test_someone_elses_upgrade_is_refused),
		cmocka_unit_test(test_shared_pins_are_never_moved),
		cmocka_unit_test(test_drain_rule),
	};

	return cmocka_run_group_tests_name("handoff", tests, NULL, NULL);
}

# lessons/lessons.mk: the lessons' test. `make check-lessons` runs every lesson that has a checker
# in tests/lessons/ with `chalk --lesson NAME --auto` and checks the numbers it measured and the
# pictures it wrote (lesson 3 trains on a subset there: CHALK_LESSON_SUBSET).

.PHONY: check-lessons
check-lessons: $(BUILD)/chalk
	@CHALK=$(BUILD)/chalk sh tests/lessons/run.sh

CHECKS += check-lessons

package monitor

import "fmt"

// checkStored checks, in an alarm stored under key, what the evaluator relies on in an alarm read back
// from the store (written by PutMetricAlarm, which checked more; a damaged
// record must not reach the evaluator, whose goroutine a division by a
// zero period or a range of a billion periods would end or exhaust).
func (a *Alarm) checkStored(key string) error {
	limit := int64(24 * 3600)
	if a.Period >= 3600 {
		limit = 7 * 24 * 3600
	}
	switch {
	case a.Name == "" || a.Name != key:
		return fmt.Errorf("name %q under key %q", a.Name, key)
	case a.Period != 10 && a.Period != 30 && (a.Period < 60 || a.Period%60 != 0):
		return fmt.Errorf("period %d", a.Period)
	case a.EvaluationPeriods < 1 || a.Period*int64(a.EvaluationPeriods) > limit:
		return fmt.Errorf("%d evaluation periods of %d s", a.EvaluationPeriods, a.Period)
	case a.DatapointsToAlarm < 1 || a.DatapointsToAlarm > a.EvaluationPeriods:
		return fmt.Errorf("%d datapoints to alarm of %d", a.DatapointsToAlarm, a.EvaluationPeriods)
	}
	return nil
}

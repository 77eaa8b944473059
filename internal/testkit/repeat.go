package testkit

// Repeat calls step in a goroutine again and again until step returns an
// error or stop is called: the load or the checker a test runs beside
// what it tests. stop waits for the step under way to end and returns the
// error that ended the loop (nil when stop ended it); call it once.
func Repeat(step func() error) (stop func() error) {
	quit, done := make(chan struct{}), make(chan struct{})
	var err error
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
			}
			if err = step(); err != nil {
				return
			}
		}
	}()
	return func() error {
		close(quit)
		<-done
		return err
	}
}

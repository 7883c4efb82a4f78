package nsenter

/*
#cgo CFLAGS: -Wall -O2
extern void stack_nsenter(void);
void __attribute__((constructor)) stack_nsenter_init(void) { stack_nsenter(); }
*/
import "C"

"""GPIO of the box: board profiles, LED patterns and drivers, the button, modem power pins.

* boards: which BCM pin does what on each supported board ("none", "pi-sim7600-hat", ...).
* pins: the gpiozero pin factory, chosen by environment like gpiozero's own default.
* patterns: what an LED pattern looks like over time (pure).
* leds: drives gpiozero LEDs through patterns on an injectable clock.
* button: short press and 10 s hold on a gpiozero Button, timed by the same clock.
* modempower: PWRKEY and RESET pulses for modems on a HAT (the lines' recovery hook).
"""

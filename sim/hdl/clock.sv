// The clock of the co-simulation harnesses (harness.sv, axi_harness.sv); see sim/build.py.
//
// Built without waves, the clock runs in delta cycles: every edge of `tick` is a non-blocking
// update of this block, triggered by the edge before, so the cycles of a burst all happen within
// one evaluation of the model at one simulated time. Neither Verilator's timing scheduler nor
// cocotb's loop runs per edge; Verilator's --converge-limit (sim/build.py) bounds the edges of
// one evaluation, so the clock pauses after `burst` cycles (set by the bench before `start`): it
// raises `paused`, and the bench resumes it by toggling `start` (at cocotb's next timer, see
// sim/bench.py).
//
// Built with waves (define HWSIM_TIMED_CLOCK, Verilator --timing) each edge is one nanosecond
// later than the one before, so that a waveform shows the cycles in time.
//
// Either way the first edge after `start` rises is a rising one, and no edge follows the falling
// edge after `done` was raised at a rising one.

module hwsim_clock (
    input  logic start,
    input  logic done,
    input  int burst,      // cycles per burst, 1 to 2**29
    output logic tick,
    output logic paused
);
    initial tick = 0;
    initial paused = 0;
`ifdef HWSIM_TIMED_CLOCK
    initial begin  // stops once done: no event is left, so the simulator idles to cocotb's timer
        wait (start);
        while (!done) #1 tick = !tick;
    end
`else
    logic seen = 0;  // start's value when this burst began
    int left = 0;    // edges left in this burst
    always @(edge start or edge tick) begin
        if (done) begin
        end else if (start != seen) begin  // started or resumed
            seen <= start;
            paused <= 0;
            left <= 2 * burst - 1;
            tick <= !tick;
        end else if (left > 0) begin
            left <= left - 1;
            tick <= !tick;
        end else begin
            paused <= 1;
        end
    end
`endif
endmodule

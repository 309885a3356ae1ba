// hwsim co-simulation harness: drives every beat of the generated top in HDL (see sim/harness.py).
//
// The cocotb bench (sim/bench.py) writes the job files into the simulation's working directory,
// sets `burst`, raises `start` and polls `done` (and `paused`, see clock.sv) on a long timer;
// nothing of Python runs per cycle, and no VPI callback is evaluated per time step. The harness then
//   * runs the clock (`tick`, from hwsim_clock in sim/hdl/clock.sv: in bursts of delta cycles,
//     or in time with waves; not named `clk`, so that the top stays the outermost scope with a
//     `clk` in a waveform, see sim/activity.py) and holds `rst` for RESET_CYCLES rising edges;
//   * offers the beats of each input stream (hwsim_source, one binary file each), valid
//     following the valid pattern, and takes o_results with ready following the ready pattern;
//   * counts, per layer, the cycles from the descriptor transfer to the last result transfer (a
//     layer of no result beats, a K tile that writes partial sums: to the last cycle before the
//     top is ready for a descriptor again, i.e. the tile's take; the storing K tile after it ends
//     the model layer) and the stalls in that span, exactly as sim/bench.py
//     defines them, and writes the result beats, those counts and a summary line to files that
//     the bench reads back.
// The top's `ready` outputs and `o_results__valid` depend on its state only, so the transfers of
// a cycle are decided at its rising edge from the values driven since the previous one.
//
// Files (cwd): job.txt (max_cycles, layers, the valid and the ready pattern as `length bit...`),
// counts.txt (per layer: result beats, and 1 if its descriptor waits until every earlier layer
// has ended -- the first tile of a model layer, so that the layer runs on an idle top), desc.bin,
// params.bin, weights.bin, acts.bin, resid.bin (binary, read with $fread, cheaper per beat than
// parsing text: the beat count in 4 bytes, then each beat in ceil(W/8) bytes for its stream's
// width W, most significant byte first; the bench reads the widths W_DESC .. W_RESID, public for
// that); written: results.hex (every result beat), records.txt (`D layer cycle stalls` per
// descriptor transfer, `L layer cycle stalls error` per layer's end -- not in layer order when a
// store overlaps the next layers --, `E cycles timeout` at the end).

module hwsim_source #(
    parameter int W = 1,
    parameter string FILE = ""
) (
    input  logic clk,
    input  logic active,   // out of reset, not finished
    input  logic offer,    // the valid pattern's bit of this cycle
    input  logic ready,
    output logic valid,
    output logic [W-1:0] payload,
    output logic stall     // the top waits on this stream while it offers nothing
);
    localparam int BYTES = (W + 7) / 8;
    int fd = 0, count = 0, index = 0;
    wire pending = index < count;
    assign valid = active && pending && offer;
    assign stall = active && pending && ready && !offer;

    function automatic logic [W-1:0] next_beat();  // BYTES bytes, most significant first
        logic [W-1:0] beat = '0;
        if ($fread(beat, fd) != BYTES) $fatal(1, "%s: short beat", FILE);
        return beat;
    endfunction

    always @(posedge clk) begin : step
        int beats;
        if (fd == 0) begin  // the first rising edge after start (in reset): open, show beat 0
            fd = $fopen(FILE, "rb");
            if (fd == 0) $fatal(1, "cannot open %s", FILE);
            if ($fread(beats, fd) != 4) $fatal(1, "%s: no beat count", FILE);
            count <= beats;
            payload <= beats > 0 ? next_beat() : '0;
        end else if (valid && ready) begin
            if (index + 1 < count) payload <= next_beat();
            index <= index + 1;
        end
    end
endmodule

module hwsim_harness #(
    parameter int W_DESC /*verilator public_flat_rd*/ = 1,
    parameter int W_PARAMS /*verilator public_flat_rd*/ = 1,
    parameter int W_WEIGHTS /*verilator public_flat_rd*/ = 1,
    parameter int W_ACTS /*verilator public_flat_rd*/ = 1,
    parameter int W_RESID /*verilator public_flat_rd*/ = 1,
    parameter int W_RESULTS = 1,
    parameter int RESET_CYCLES = 2,
    parameter int MAX_PATTERN = 1024
) ();
    logic start /*verilator public_flat_rw*/ = 0;
    logic done /*verilator public_flat_rw*/ = 0;
    logic paused /*verilator public_flat_rw*/;
    int burst /*verilator public_flat_rw*/ = 1;
    logic tick;
    hwsim_clock clock (.start, .done, .burst, .tick, .paused);

    logic rst = 1, active = 0;
    int resets = 0;
    longint cycle = 0, stalls = 0, budget = 0;
    int layers = 0, got = 0, vlen = 1, rlen = 1, vphase = 0, rphase = 0;
    int job = 0, counts = 0, results = 0, records = 0;
    logic vpat [MAX_PATTERN], rpat [MAX_PATTERN];
    logic error = 0;
    int wants[$];   // result beats of each descriptor ("layer")
    bit holds[$];   // the descriptor waits until every earlier one has ended (a model layer's first)
    int given = 0, ended = 0;
    int rl = 0;     // the descriptor whose results come next (the first with results not yet ended)
    int quiet = -1; // a descriptor of no result beats is running: it ends when i_desc is ready again
    wire hold_desc = given < layers && holds[given] && ended < given;

    logic [4:0] valid, ready, stall;
    logic results_valid, results_ready, o_error;
    logic [W_DESC-1:0] desc;
    logic [W_PARAMS-1:0] params;
    logic [W_WEIGHTS-1:0] weights;
    logic [W_ACTS-1:0] acts;
    logic [W_RESID-1:0] resid;
    logic [W_RESULTS-1:0] result;
    wire offer = vpat[vphase];
    assign results_ready = active && rpat[rphase];

    hwsim_source #(.W(W_DESC), .FILE("desc.bin")) s_desc (
        .clk(tick), .active, .offer(offer && !hold_desc), .ready(ready[0]), .valid(valid[0]), .payload(desc),
        .stall(stall[0]));
    hwsim_source #(.W(W_PARAMS), .FILE("params.bin")) s_params (
        .clk(tick), .active, .offer, .ready(ready[1]), .valid(valid[1]), .payload(params), .stall(stall[1]));
    hwsim_source #(.W(W_WEIGHTS), .FILE("weights.bin")) s_weights (
        .clk(tick), .active, .offer, .ready(ready[2]), .valid(valid[2]), .payload(weights), .stall(stall[2]));
    hwsim_source #(.W(W_ACTS), .FILE("acts.bin")) s_acts (
        .clk(tick), .active, .offer, .ready(ready[3]), .valid(valid[3]), .payload(acts), .stall(stall[3]));
    hwsim_source #(.W(W_RESID), .FILE("resid.bin")) s_resid (
        .clk(tick), .active, .offer, .ready(ready[4]), .valid(valid[4]), .payload(resid), .stall(stall[4]));

    `HWSIM_TOP dut (
        .clk(tick), .rst,
        .i_desc__payload(desc), .i_desc__valid(valid[0]), .i_desc__ready(ready[0]),
        .i_params__payload(params), .i_params__valid(valid[1]), .i_params__ready(ready[1]),
        .i_weights__payload(weights), .i_weights__valid(valid[2]), .i_weights__ready(ready[2]),
        .i_acts__payload(acts), .i_acts__valid(valid[3]), .i_acts__ready(ready[3]),
        .i_resid__payload(resid), .i_resid__valid(valid[4]), .i_resid__ready(ready[4]),
        .o_results__payload(result), .o_results__valid(results_valid),
        .o_results__ready(results_ready), .o_error);

    function automatic int open_file(string name, string mode);
        int fd = $fopen(name, mode);
        if (fd == 0) $fatal(1, "cannot open %s", name);
        return fd;
    endfunction

    always @(posedge tick) begin : run
        int bit_, n, want_, hold_, next;
        longint driver_stalls, total;
        logic take, quiet_end, loud_end;
        if (job == 0) begin  // the first rising edge after start: read the job
            job = open_file("job.txt", "r");
            n = $fscanf(job, "%d %d %d", budget, layers, vlen);
            for (int i = 0; i < vlen; i++) begin n = $fscanf(job, "%d", bit_); vpat[i] = bit_[0]; end
            n = $fscanf(job, "%d", rlen);
            for (int i = 0; i < rlen; i++) begin n = $fscanf(job, "%d", bit_); rpat[i] = bit_[0]; end
            $fclose(job);
            counts = open_file("counts.txt", "r");
            for (int i = 0; i < layers; i++) begin
                n = $fscanf(counts, "%d %d", want_, hold_);
                wants.push_back(want_);
                holds.push_back(hold_[0]);
            end
            $fclose(counts);
            while (rl < layers && wants[rl] == 0) rl++;
            results = open_file("results.hex", "w");
            records = open_file("records.txt", "w");
        end
        if (rst) begin
            resets <= resets + 1;
            if (resets == RESET_CYCLES - 1) begin
                rst <= 0;
                active <= 1;
            end
        end else if (active) begin
            // the barrier's waiting is the bench's choice, not a stall of the top
            driver_stalls = longint'(stall[0] && !hold_desc) + longint'(stall[1]) + longint'(stall[2])
                + longint'(stall[3]) + longint'(stall[4]);
            total = stalls + driver_stalls + longint'(results_valid && !results_ready);
            take = results_valid && results_ready;
            // a silent descriptor ends in the cycle before the top is ready for one again
            quiet_end = quiet >= 0 && ready[0];
            loud_end = take && rl < layers && got + 1 == wants[rl];
            if (quiet_end) begin
                $fwrite(records, "L %0d %0d %0d %0d\n", quiet, cycle - 1, stalls, o_error);
                quiet <= -1;
            end
            if (valid[0] && ready[0]) begin
                $fwrite(records, "D %0d %0d %0d\n", given, cycle, stalls + driver_stalls);
                if (wants[given] == 0) quiet <= given;
                given <= given + 1;
            end
            if (take) begin
                $fwrite(results, "%h\n", result);
                if (loud_end) begin
                    $fwrite(records, "L %0d %0d %0d %0d\n", rl, cycle, total, error || o_error);
                    next = rl + 1;
                    while (next < layers && wants[next] == 0) next++;
                    rl <= next;
                    got <= 0;
                    error <= 0;
                end else begin
                    got <= got + 1;
                    error <= error || o_error;
                end
            end
            ended <= ended + int'(quiet_end) + int'(loud_end);
            stalls <= total;
            cycle <= cycle + 1;
            vphase <= vphase + 1 == vlen ? 0 : vphase + 1;
            rphase <= rphase + 1 == rlen ? 0 : rphase + 1;
            if (ended + int'(quiet_end) + int'(loud_end) == layers || cycle + 1 == budget) begin
                $fwrite(records, "E %0d %0d\n", cycle + 1, ended + int'(quiet_end) + int'(loud_end) != layers);
                $fclose(results);
                $fclose(records);
                active <= 0;
                done <= 1;
            end
        end
    end
endmodule

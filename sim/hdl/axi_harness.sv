// hwsim co-simulation harness of the network accelerator (rtl/sequencer.py): an AXI4 memory
// model behind its master port; nothing of Python runs per cycle (see sim/netbench.py). Its clock
// is hwsim_clock (sim/hdl/clock.sv), driven by the bench as in harness.sv.
//
// The data bus is DATA_BITS wide (the accelerator's rtl.bus_bits); the memory holds MEM_WORDS
// words of that width.
//
// Files (cwd): job.txt (`max_cycles base read_latency write_latency words length bit...`: the
// cycle budget, the command list's byte address, the memory's latencies, the words of the image
// to write back and the memory's availability pattern),
// mem.hex (the memory image, one bus word per line from address 0); written: mem_out.hex (the
// memory after the run) and records.txt (`E cycles timeout error reads`, reads: the most read
// bursts that were in flight at once).
//
// The memory: it holds up to READ_SLOTS read bursts (addresses taken, last beat not yet taken) and
// answers them in order (one ID): the first beat of a burst is offered `read_latency` cycles after
// its address was taken or once the burst before it is done, whichever is later, the others back
// to back (rvalid held while rready is low). Writes: awready and wready high; a write takes effect
// when its data beat is taken (with its strobes) and answers OKAY `write_latency` cycles later, in
// order. In a cycle whose availability-pattern bit is 0 the memory is busy: no read address,
// write address or write data is taken and no read data beat is offered (back-pressure on every
// channel). The pattern is indexed by the cycle. `cycles` run from the rising edge that takes i_start to the one on which o_done is
// first seen high.

module hwsim_axi_harness #(
    parameter int DATA_BITS = 64,
    parameter int MEM_WORDS = 1024,
    parameter int RESET_CYCLES = 2,
    parameter int MAX_PATTERN = 1024,
    parameter int READ_SLOTS = 16
) ();
    logic start /*verilator public_flat_rw*/ = 0;
    logic done /*verilator public_flat_rw*/ = 0;
    logic paused /*verilator public_flat_rw*/;
    int burst /*verilator public_flat_rw*/ = 1;
    logic tick;
    hwsim_clock clock (.start, .done, .burst, .tick, .paused);

    localparam int LOG_BYTES = $clog2(DATA_BITS / 8);
    logic [DATA_BITS-1:0] mem [MEM_WORDS];
    logic rst = 1, active = 0, go = 0;
    int resets = 0, job = 0, plen = 1, phase = 0, rlat = 1, wlat = 1, used = 1;
    longint cycle = 0, budget = 0, base = 0;
    logic pat [MAX_PATTERN];
    wire avail = pat[phase];

    logic [31:0] araddr, awaddr;
    logic [7:0] arlen, awlen;
    logic [2:0] arsize, awsize;
    logic [1:0] arburst, awburst, rresp, bresp;
    logic arvalid, arready, rvalid, rready, rlast, awvalid, awready, wvalid, wready, wlast;
    logic bvalid, bready;
    logic [DATA_BITS-1:0] rdata, wdata;
    logic [DATA_BITS/8-1:0] wstrb;
    logic busy, o_done, error;

    `HWSIM_TOP dut (
        .clk(tick), .rst, .i_start(go), .i_base(base[31:0]), .o_busy(busy), .o_done, .o_error(error),
        .m_axi_araddr(araddr), .m_axi_arlen(arlen), .m_axi_arsize(arsize), .m_axi_arburst(arburst),
        .m_axi_arvalid(arvalid), .m_axi_arready(arready),
        .m_axi_rdata(rdata), .m_axi_rresp(rresp), .m_axi_rlast(rlast), .m_axi_rvalid(rvalid),
        .m_axi_rready(rready),
        .m_axi_awaddr(awaddr), .m_axi_awlen(awlen), .m_axi_awsize(awsize), .m_axi_awburst(awburst),
        .m_axi_awvalid(awvalid), .m_axi_awready(awready),
        .m_axi_wdata(wdata), .m_axi_wstrb(wstrb), .m_axi_wlast(wlast), .m_axi_wvalid(wvalid),
        .m_axi_wready(wready),
        .m_axi_bresp(bresp), .m_axi_bvalid(bvalid), .m_axi_bready(bready));

    // Read bursts in flight, a ring from r_head: the next word, the words left and the cycle the
    // first word is due; r_most the most in flight at once.
    longint r_word [READ_SLOTS], r_due [READ_SLOTS];
    int r_left [READ_SLOTS];
    int r_head = 0, r_count = 0, r_most = 0;
    assign arready = active && avail && r_count < READ_SLOTS;
    assign rvalid = active && r_count > 0 && r_due[r_head] <= cycle && avail;
    assign rdata = mem[r_word[r_head] % MEM_WORDS];
    assign rresp = r_word[r_head] < MEM_WORDS ? 2'b00 : 2'b10;
    assign rlast = r_left[r_head] == 1;
    // Write channels: addresses wait in a queue for their data beat.
    longint aw_queue[$], b_due[$];
    assign awready = active && avail;
    assign wready = active && avail && (aw_queue.size() > 0 || awvalid);
    assign bvalid = active && b_due.size() > 0 && b_due[0] <= cycle;
    assign bresp = 2'b00;

    function automatic int open_file(string name, string mode);
        int fd = $fopen(name, mode);
        if (fd == 0) $fatal(1, "cannot open %s", name);
        return fd;
    endfunction

    always @(posedge tick) begin : run
        int n, bit_, tail;
        longint addr;
        if (job == 0) begin
            job = open_file("job.txt", "r");
            n = $fscanf(job, "%d %d %d %d %d %d", budget, base, rlat, wlat, used, plen);
            for (int i = 0; i < plen; i++) begin n = $fscanf(job, "%d", bit_); pat[i] = bit_[0]; end
            $fclose(job);
            $readmemh("mem.hex", mem);
        end
        go <= 0;
        if (rst) begin
            resets <= resets + 1;
            if (resets == RESET_CYCLES - 1) begin
                rst <= 0;
                active <= 1;
                go <= 1;
            end
        end else if (active) begin
            if (arvalid && arready) begin  // its slot is never the head's while that one answers
                tail = (r_head + r_count) % READ_SLOTS;
                r_word[tail] <= longint'(araddr) >> LOG_BYTES;
                r_left[tail] <= int'(arlen) + 1;
                r_due[tail] <= cycle + rlat;
            end
            if (rvalid && rready) begin
                r_word[r_head] <= r_word[r_head] + 1;
                r_left[r_head] <= r_left[r_head] - 1;
                if (rlast) r_head <= (r_head + 1) % READ_SLOTS;
            end
            r_count <= r_count + int'(arvalid && arready) - int'(rvalid && rready && rlast);
            if (r_count > r_most) r_most <= r_count;
            if (awvalid && awready) aw_queue.push_back(longint'(awaddr) >> LOG_BYTES);
            if (wvalid && wready) begin  // its address is in the queue (pushed above if now)
                addr = aw_queue.pop_front();
                for (int b = 0; b < DATA_BITS / 8; b++)
                    if (wstrb[b] && addr < MEM_WORDS) mem[addr][b * 8 +: 8] = wdata[b * 8 +: 8];
                b_due.push_back(cycle + wlat);
            end
            if (bvalid && bready) void'(b_due.pop_front());
            phase <= phase + 1 == plen ? 0 : phase + 1;
            cycle <= cycle + 1;
            if ((o_done && cycle > 0) || cycle + 1 == budget) begin
                $writememh("mem_out.hex", mem, 0, used - 1);
                job = open_file("records.txt", "w");
                $fwrite(job, "E %0d %0d %0d %0d\n", cycle, !o_done, error, r_most);
                $fclose(job);
                active <= 0;
                done <= 1;
            end
        end
    end
endmodule

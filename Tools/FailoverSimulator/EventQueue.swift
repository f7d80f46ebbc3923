import PairModel
import HealthMonitor

/// Pending simulation events ordered by time, then by insertion, so equal times replay in
/// the same order every run.
struct EventQueue<Event> {
    private var heap: [(time: MonotonicTime, sequence: Int, event: Event)] = []
    private var sequence = 0

    var isEmpty: Bool { heap.isEmpty }
    var nextTime: MonotonicTime? { heap.first?.time }

    mutating func push(_ event: Event, at time: MonotonicTime) {
        sequence += 1
        heap.append((time, sequence, event))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(child, parent) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (time: MonotonicTime, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, precedes(left, smallest) { smallest = left }
            if right < heap.count, precedes(right, smallest) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (top.time, top.event)
    }

    private func precedes(_ a: Int, _ b: Int) -> Bool {
        heap[a].time != heap[b].time ? heap[a].time < heap[b].time : heap[a].sequence < heap[b].sequence
    }
}
